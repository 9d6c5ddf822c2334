package canary

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/promlab"
	"github.com/runbookhq/runbook/internal/promql"
)

// Versions of the demo service, as runbooks/canary-deploy.yml names them.
const (
	oldVersion = "1.0.0"
	newVersion = "2.0.0"
)

// hosts are the inventory's instances, in batch order: web1 is the canary,
// web2 and web3 the second batch ("50%"), web4 the third.
var hosts = []string{"web1", "web2", "web3", "web4"}

// firstPort is the port of the first fleet's web1. Each fleet has four
// ports of its own (firstPort+4*index ...), so that fleets run at once;
// 18121-18140 are used by no other test or demo.
const firstPort = 18121

// fleetPorts are the four ports of the fleet at index i.
func fleetPorts(i int) []int {
	return []int{firstPort + 4*i, firstPort + 4*i + 1, firstPort + 4*i + 2, firstPort + 4*i + 3}
}

// targets are the scrape targets of the fleet at index i.
func targets(i int) []string {
	var out []string
	for _, p := range fleetPorts(i) {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out
}

// fleet is four demo-app instances run by the runbook, and the folders and
// inventory of one rollout of them.
type fleet struct {
	t     *testing.T
	ports []int
	prom  *promlab.Server
	root  string // demo_root: bin/demo-app, and .runbook/canary with the pid files
	state string // the runbook's --state-dir
	inv   string
}

// newFleet writes the inventory of the fleet at index i, judged by prom,
// with hostVars added to the hosts named; its instances are stopped when
// the test ends.
func newFleet(t *testing.T, i int, prom *promlab.Server, groupVars map[string]string, hostVars map[string]map[string]string) *fleet {
	t.Helper()
	f := &fleet{t: t, ports: fleetPorts(i), prom: prom, root: t.TempDir(), state: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(f.root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bins.demoApp, filepath.Join(f.root, "bin", "demo-app")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("all:\n  children:\n    web:\n      vars:\n        ansible_connection: local\n")
	vars := map[string]string{"demo_root": f.root, "prometheus_url": prom.URL, "app_lifetime": "4m"}
	for k, v := range groupVars {
		vars[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&b, "        %s: %q\n", k, vars[k])
	}
	b.WriteString("      hosts:\n")
	for j, h := range hosts {
		fmt.Fprintf(&b, "        %s: { app_port: %d", h, f.ports[j])
		for _, k := range slices.Sorted(maps.Keys(hostVars[h])) {
			fmt.Fprintf(&b, ", %s: %q", k, hostVars[h][k])
		}
		b.WriteString(" }\n")
	}
	f.inv = filepath.Join(t.TempDir(), "canary.yml")
	if err := os.WriteFile(f.inv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	return f
}

// run runs runbooks/canary-deploy.yml on the fleet with args and returns
// its exit code and output.
func (f *fleet) run(ctx context.Context, args ...string) (int, string) {
	f.t.Helper()
	all := append([]string{"exec", filepath.Join(repoRoot, "runbooks", "canary-deploy.yml"),
		"-i", f.inv, "--yes", "--state-dir", f.state}, args...)
	cmd := exec.CommandContext(ctx, bins.runbook, all...)
	cmd.Dir = f.t.TempDir()
	cmd.Stdin = nil // no terminal: an inconclusive analysis cannot ask
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	f.t.Logf("runbook %s: %v after %s", strings.Join(args, " "), err, time.Since(start).Round(100*time.Millisecond))
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), out.String()
	}
	f.t.Fatalf("runbook %s: %v\n%s", strings.Join(all, " "), err, out.String())
	return -1, ""
}

// start starts the old version on every instance, as make demo-canary
// does (--tags fleet), and waits until Prometheus has enough samples of
// each for the rates the analysis reads.
func (f *fleet) start(ctx context.Context) {
	f.t.Helper()
	if code, out := f.run(ctx, "--tags", "fleet"); code != 0 {
		f.t.Fatalf("starting the old fleet: exit %d\n%s", code, out)
	}
	start := time.Now()
	defer func() { f.t.Logf("Prometheus had the samples after %s", time.Since(start).Round(100*time.Millisecond)) }()
	c, err := promql.New(promql.Config{URL: f.prom.URL, Timeout: 5 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	for _, p := range f.ports {
		// The rates are over 5s: four samples of the old version.
		q := fmt.Sprintf(`count_over_time(http_requests_total{instance="127.0.0.1:%d",code="200"}[5s])`, p)
		poll(ctx, f.t, "Prometheus has 4 samples of 127.0.0.1:"+strconv.Itoa(p), func() (bool, string) {
			n, err := c.Number(ctx, q, time.Time{})
			return err == nil && n >= 4, fmt.Sprintf("%v %v", n, err)
		})
	}
}

// stop stops every instance still running under the fleet's pid files.
func (f *fleet) stop() {
	for _, h := range hosts {
		pid, err := f.pidFile(h)
		if err != nil {
			continue
		}
		// Only our own demo-app: the pid may have been reused.
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !bytes.Contains(cmdline, []byte(f.root)) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
}

// pidFile reads host's pid file.
func (f *fleet) pidFile(host string) (int, error) {
	b, err := os.ReadFile(filepath.Join(f.root, ".runbook", "canary", host+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// instance is what one instance says about itself.
type instance struct {
	PIDFile int     // its pid file
	PID     int     `json:"pid"` // /health's
	Version string  `json:"version"`
	Uptime  float64 `json:"uptime_seconds"`
}

// look asks every instance for its /health and reads its pid file.
func (f *fleet) look() map[string]instance {
	f.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	out := map[string]instance{}
	for i, h := range hosts {
		var in instance
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", f.ports[i]))
		if err != nil {
			f.t.Fatalf("%s: %v", h, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(b, &in); err != nil {
			f.t.Fatalf("%s /health %q: %v", h, b, err)
		}
		if in.PIDFile, err = f.pidFile(h); err != nil {
			f.t.Fatalf("%s: %v", h, err)
		}
		out[h] = in
	}
	return out
}

// wantVersions fails the test unless every instance serves version on
// /version and under the pid in its pid file.
func (f *fleet) wantVersions(now map[string]instance, want map[string]string) {
	f.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for i, h := range hosts {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/version", f.ports[i]))
		if err != nil {
			f.t.Errorf("%s /version: %v", h, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(b)); got != want[h] || now[h].Version != want[h] {
			f.t.Errorf("%s serves %q (/health %q), want %s", h, got, now[h].Version, want[h])
		}
		if now[h].PID != now[h].PIDFile {
			f.t.Errorf("%s: /health says pid %d, its pid file %d", h, now[h].PID, now[h].PIDFile)
		}
	}
}

// wantUntouched fails the test unless host is the same process as before,
// never restarted, and the journal has no event of it.
func (f *fleet) wantUntouched(host string, before, after map[string]instance, j journal) {
	f.t.Helper()
	b, a := before[host], after[host]
	if a.PID != b.PID || a.PIDFile != b.PIDFile || a.Version != b.Version || a.Uptime < b.Uptime {
		f.t.Errorf("%s was touched: before pid %d (file %d) %s up %.1fs, after pid %d (file %d) %s up %.1fs",
			host, b.PID, b.PIDFile, b.Version, b.Uptime, a.PID, a.PIDFile, a.Version, a.Uptime)
	}
	var seen []string
	for _, e := range j {
		if e.Host == host {
			seen = append(seen, fmt.Sprintf("%s %q", e.Kind, e.Step))
		}
	}
	if len(seen) > 0 {
		f.t.Errorf("%s was to be untouched, and the journal has %d events of it: %s", host, len(seen), strings.Join(seen[:min(len(seen), 5)], ", "))
	}
}

// wantRestarted fails the test unless host runs another process than
// before.
func (f *fleet) wantRestarted(host string, before, after map[string]instance) {
	f.t.Helper()
	if after[host].PID == before[host].PID {
		f.t.Errorf("%s still runs pid %d: it was not restarted", host, after[host].PID)
	}
}

// event is what the tests read of a journal event.
type event struct {
	Kind   string         `json:"kind"`
	Phase  string         `json:"phase"`
	Batch  int            `json:"batch"`
	Host   string         `json:"host"`
	Step   string         `json:"step"`
	Status string         `json:"status"`
	Error  string         `json:"error"`
	Result map[string]any `json:"result"`
	Data   map[string]any `json:"data"`
}

type journal []event

// journals are the runs recorded under the fleet's state dir.
func (f *fleet) journals() []string {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.state, "runs", "*.jsonl"))
	if err != nil {
		f.t.Fatal(err)
	}
	return files
}

// newJournal is the one journal in the state dir that is not in old.
func (f *fleet) newJournal(old []string) string {
	f.t.Helper()
	var found []string
	for _, p := range f.journals() {
		if !slices.Contains(old, p) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		f.t.Fatalf("want one new journal under %s, found %v (before %v)", f.state, found, old)
	}
	return found[0]
}

func readJournal(t *testing.T, path string) journal {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j journal
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// The line being written when a test polls it.
			continue
		}
		j = append(j, e)
	}
	return j
}

// find is the events of kind on host (any host when ""), in order.
func (j journal) find(kind, host string) []event {
	var out []event
	for _, e := range j {
		if e.Kind == kind && (host == "" || e.Host == host) {
			out = append(out, e)
		}
	}
	return out
}

// stepEnd is the end of host's step named step in phase, or nil.
func (j journal) stepEnd(phase, host, step string) *event {
	for i, e := range j {
		if e.Kind == "step_end" && e.Phase == phase && e.Host == host && e.Step == step {
			return &j[i]
		}
	}
	return nil
}

// measurement is one measurement in an analysis step's result.
type measurement struct {
	N        int
	Verdict  string
	Value    any
	Baseline any
	Error    string
}

// measurements are the measurements of metric in an analysis step's result,
// and the metric's phase.
func measurements(t *testing.T, e *event, metric string) ([]measurement, string) {
	t.Helper()
	if e == nil {
		t.Fatal("no analysis step in the journal")
	}
	ms, _ := e.Result["metrics"].([]any)
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		if mm["name"] != metric {
			continue
		}
		var out []measurement
		list, _ := mm["measurements"].([]any)
		for _, x := range list {
			r, _ := x.(map[string]any)
			n, _ := r["n"].(float64)
			v, _ := r["verdict"].(string)
			er, _ := r["error"].(string)
			out = append(out, measurement{N: int(n), Verdict: v, Value: r["value"], Baseline: r["baseline"], Error: er})
		}
		phase, _ := mm["phase"].(string)
		return out, phase
	}
	t.Fatalf("no metric %s in the result of %s %q on %s: %v", metric, e.Phase, e.Step, e.Host, e.Result)
	return nil, ""
}

// verdicts lists measurements' verdicts, for messages and comparisons.
func verdicts(ms []measurement) string {
	var vs []string
	for _, m := range ms {
		vs = append(vs, m.Verdict)
	}
	return strings.Join(vs, ",")
}

// describe says what each measurement read, for the test's log.
func describe(ms []measurement) string {
	var out []string
	for _, m := range ms {
		s := fmt.Sprintf("#%d %v (baseline %v) %s", m.N, m.Value, m.Baseline, m.Verdict)
		if m.Error != "" {
			s += ": " + m.Error
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// poll calls cond every 200ms until it holds, and fails the test when ctx
// ends first; what is the condition in words, cond's string its last state.
func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v (last: %s)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
