package report

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/journal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixture is the report of testdata/run.jsonl and its plan's flow,
// testdata/run.plan.mmd (see testdata/README.md).
func fixture(t *testing.T) *Report {
	t.Helper()
	f, err := os.Open("testdata/run.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := journal.Replay(f)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := os.ReadFile("testdata/run.plan.mmd")
	if err != nil {
		t.Fatal(err)
	}
	return Build(st, string(flow))
}

func TestGolden(t *testing.T) {
	r := fixture(t)
	for _, tt := range []struct{ format, file string }{
		{"json", "run.json"},
		{"markdown", "run.md"},
		{"html", "run.html"},
		{"junit", "run.junit.xml"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.Write(&b, tt.format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s; run go test ./internal/report -update and review the diff", tt.format, golden)
			}
			// The run had -e api_token=s3cr3t-t0ken-xyz: the journal hides
			// it, and a report adds nothing the journal does not hold.
			if bytes.Contains(b.Bytes(), []byte("s3cr3t")) {
				t.Errorf("%s shows the -e secret", tt.format)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	r := fixture(t)
	if r.Result != "aborted" || r.ExitCode == nil || *r.ExitCode != 1 || r.User != "alice" {
		t.Errorf("summary = %s exit %v user %q, want aborted exit 1 user alice", r.Result, r.ExitCode, r.User)
	}
	if len(r.Hosts) != 3 || r.Hosts[1].Status != "rolled_back" || len(r.Hosts[1].Rollback) != 1 {
		t.Fatalf("hosts = %+v, want app2 rolled back by one step", r.Hosts)
	}
	var kinds []string
	for _, a := range r.Approvals {
		kinds = append(kinds, a.Kind+"/"+a.Decision+"/"+a.User)
	}
	if got, want := strings.Join(kinds, " "), "pause/approved/ pause/approved/ approval/approved/bob"; got != want {
		t.Errorf("approvals = %s, want %s", got, want)
	}
	if len(r.Metrics) != 4 || r.Metrics[1].Values["http://127.0.0.1:18931/metrics"]["app_latency_seconds"] != 0.042 {
		t.Errorf("metrics = %+v, want 4 gates with the latency read", r.Metrics)
	}
	if len(r.Notices) != 1 || r.Notices[0].Kind != "notify_failed" {
		t.Errorf("notices = %+v, want the notify_failed", r.Notices)
	}
	if !strings.HasPrefix(r.Flow, "flowchart TD") {
		t.Errorf("flow = %.40q, want the plan's Mermaid", r.Flow)
	}
}

// TestJUnitParses reads the JUnit XML with a real XML parser (Python's) and
// checks it against the shape CI systems read: the counts on each suite
// match its test cases, and each test case holds at most one of failure,
// error or skipped, with a message.
func TestJUnitParses(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	st, err := journal.Replay(strings.NewReader(hostile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		r    *Report
		want string
	}{
		{"fixture", fixture(t), "tests=16 failures=1 errors=0 skipped=2"},
		{"hostile", Build(st, ""), "tests=2 failures=1 errors=1 skipped=0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.r.WriteJUnit(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "junit.xml")
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, "testdata/junit_check.py", path).CombinedOutput()
			if err != nil {
				t.Fatalf("junit_check.py: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want {
				t.Errorf("junit_check.py says %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHTMLScreenshot draws the HTML report in headless Chromium and checks
// that the PNG decodes and shows a page, not a blank or a one-colour error
// screen. The PNG stays in $RUNBOOK_ARTIFACTS when it is set.
func TestHTMLScreenshot(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed (scripts/deps.sh installs it)")
	}
	dir := os.Getenv("RUNBOOK_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := fixture(t).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(html, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	cmd := exec.Command("../../scripts/report-screenshot.sh", html, shot, "1280x1000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("report-screenshot.sh: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1000 {
		t.Errorf("screenshot is %v, want 1280x1000", b)
	}
	colours := map[[4]uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, b, a}] = true
		}
	}
	// Text, tables and the timeline's coloured bars give hundreds; a blank
	// page gives one.
	if len(colours) < 50 {
		t.Errorf("the screenshot has %d colours: the page looks blank (see %s)", len(colours), shot)
	}
	t.Logf("screenshot: %s (%d colours)", shot, len(colours))
}

// TestHTMLSelfContained: the page loads nothing from anywhere.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := fixture(t).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<link", "<img", "src=", "url(", "@import", "href="} {
		if strings.Contains(b.String(), bad) {
			t.Errorf("the HTML report holds %q: it must need nothing else", bad)
		}
	}
}
