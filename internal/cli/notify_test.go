package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// receiver is a real HTTP server on 127.0.0.1 that records what it gets.
type receiver struct {
	mu     sync.Mutex
	bodies map[string][][]byte // by path
	srv    *httptest.Server
}

func newReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{bodies: map[string][][]byte{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies[r.URL.Path] = append(rc.bodies[r.URL.Path], b)
		rc.mu.Unlock()
		if handle != nil {
			handle(w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got(path string) [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies[path]...)
}

const notifyInventory = `all:
  vars: { ansible_connection: local }
  hosts:
    h1: {}
    h2: {}
    h3: {}
`

// runCLI runs the command line in this process and returns its exit code
// and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &out)
	return code, out.String()
}

// journalEvents reads the kinds and errors of the only journal under dir.
func journalEvents(t *testing.T, dir string) (kinds []string, lines []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "runs", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("%d journals under %s, want 1", len(files), dir)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Kind string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Kind)
		lines = append(lines, sc.Text())
	}
	return kinds, lines
}

// TestNotifyEveryKind: a run that asks at a pause, fails on a host, rolls it
// back and aborts sends every kind of notification once, in order, to a
// webhook and to a Slack webhook whose URL is a -e value; no body holds a
// secret.
func TestNotifyEveryKind(t *testing.T) {
	rc := newReceiver(t, nil)
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yml")
	inv := filepath.Join(dir, "inv.yml")
	const secret = "s3cr3t-t0ken-xyz"
	os.WriteFile(inv, []byte(notifyInventory), 0o644)
	os.WriteFile(rb, []byte(`runbook: notify-demo
hosts: all
serial: 1
max_fail: 0
notify:
  - webhook: `+rc.srv.URL+`/hook
  - slack: '{{ slack_url }}'
steps:
  - name: look first
    pause: { prompt: 'go on?' }
    when: 'host.name == "h1"'
  - name: break on h2
    shell: 'test {{ host.name }} != h2 || { echo "h2 broke with {{ api_token }}" >&2; exit 3; }'
rollback:
  - shell: 'true'
`), 0o644)
	code, out := runCLI(t, "exec", rb, "-i", inv, "--yes", "--state-dir", filepath.Join(dir, "state"),
		"-e", "api_token="+secret, "-e", "slack_url="+rc.srv.URL+"/slack/T000/B000/"+secret)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (h2 failed)\n%s", code, out)
	}
	want := []string{"run_start", "approval_needed", "rollback", "host_failed", "abort", "run_end"}
	hooks := rc.got("/hook")
	var got []string
	for _, b := range hooks {
		var m struct {
			Event, Runbook, User, Host string
			Hosts                      []string
			Recap                      map[string]string
			RunID_                     string `json:"run_id"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("webhook body is not JSON: %v: %s", err, b)
		}
		got = append(got, m.Event)
		if m.Runbook != "notify-demo" || m.RunID_ == "" || len(m.Hosts) != 3 || len(m.Recap) != 3 {
			t.Errorf("%s: runbook %q run %q hosts %v recap %v; want the run's identity and recap", m.Event, m.Runbook, m.RunID_, m.Hosts, m.Recap)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("webhook got %v, want %v", got, want)
	}
	if last := hooks[len(hooks)-1]; !bytes.Contains(last, []byte(`"exit_code":1`)) || !bytes.Contains(last, []byte(`"h2":"rolled_back"`)) {
		t.Errorf("run_end body lacks the exit code or the recap: %s", last)
	}
	slack := rc.got("/slack/T000/B000/" + secret)
	if len(slack) != len(want) {
		t.Errorf("slack got %d messages, want %d", len(slack), len(want))
	}
	for _, b := range slack {
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil || m["text"] == "" || len(m) != 1 {
			t.Errorf("slack body is not {\"text\": ...}: %s", b)
		}
	}
	for _, b := range append(hooks, slack...) {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("a notification shows the secret: %s", b)
		}
	}
	if !strings.Contains(string(bytes.Join(hooks, nil)), "<redacted>") {
		t.Error("no body shows <redacted>: the failure's message should be in host_failed")
	}
	if strings.Contains(out, secret) {
		t.Errorf("the output shows the secret:\n%s", out)
	}
	kinds, _ := journalEvents(t, filepath.Join(dir, "state"))
	for _, k := range kinds {
		if k == "notify_failed" {
			t.Errorf("a delivery to a working receiver failed: %v", kinds)
		}
	}
}

// TestNotifyFailuresNeverFailTheRun: a receiver that hangs and one that
// answers 500 cost the run nothing but their timeout at the end: it exits 0
// and journals each failure as notify_failed, without the URLs.
func TestNotifyFailuresNeverFailTheRun(t *testing.T) {
	stop := make(chan struct{})
	hang := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	defer close(stop) // before hang's Cleanup closes the server
	broken := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yml")
	inv := filepath.Join(dir, "inv.yml")
	os.WriteFile(inv, []byte(notifyInventory), 0o644)
	os.WriteFile(rb, []byte(`runbook: notify-fails
hosts: all
notify:
  - webhook: `+hang.srv.URL+`/hang/token
    timeout: 300ms
    retries: 0
  - webhook: `+broken.srv.URL+`/broken/token
    timeout: 2s
    retries: 1
steps:
  - command: [true]
`), 0o644)
	state := filepath.Join(dir, "state")
	code, out := runCLI(t, "exec", rb, "-i", inv, "--yes", "--state-dir", state)
	if code != 0 {
		t.Fatalf("exit %d, want 0: a notification never fails the change\n%s", code, out)
	}
	kinds, lines := journalEvents(t, state)
	if kinds[0] != "run_start" {
		t.Fatalf("journal starts with %s", kinds[0])
	}
	var hung, failed int
	for _, l := range lines {
		if !strings.Contains(l, `"kind":"notify_failed"`) {
			continue
		}
		if strings.Contains(l, "/hang/token") || strings.Contains(l, "/broken/token") {
			t.Errorf("notify_failed shows a receiver's URL: %s", l)
		}
		switch {
		case strings.Contains(l, "notify[0] webhook"):
			hung++
		case strings.Contains(l, "notify[1] webhook") && strings.Contains(l, "500 Internal Server Error") && strings.Contains(l, "after 2 attempts"):
			failed++
		default:
			t.Errorf("unexpected notify_failed: %s", l)
		}
	}
	// run_start and run_end to each: the hanging one times out on the
	// first and the second waits behind it, then is given up at the end.
	if hung == 0 || failed != 2 {
		t.Errorf("notify_failed: %d for the hanging receiver (want some), %d for the broken one (want 2)\n%s", hung, failed, strings.Join(lines, "\n"))
	}
	if n := len(broken.got("/broken/token")); n != 4 {
		t.Errorf("the broken receiver got %d requests, want 4 (2 events, 2 attempts each)", n)
	}
	// The journal still reads back whole, with the failures after run_end.
	code, out = runCLI(t, "show", "--state-dir", state, strings.TrimSuffix(filepath.Base(mustGlob(t, state)), ".jsonl"), "--format", "json")
	if code != 0 || !strings.Contains(out, `"kind": "notify_failed"`) {
		t.Errorf("show --format json: exit %d, notices missing:\n%s", code, out)
	}
}

func mustGlob(t *testing.T, state string) string {
	files, _ := filepath.Glob(filepath.Join(state, "runs", "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("%d journals", len(files))
	}
	return files[0]
}
