package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// daemon is a pidfile service that runs this test binary in mode.
type daemon struct {
	dir      string
	pidfile  string
	startCmd arg.Argv
}

func newDaemon(t *testing.T, mode string, env ...string) *daemon {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{dir: t.TempDir()}
	d.pidfile = filepath.Join(d.dir, "etcd.pid")
	// GORACE: a -race binary otherwise sleeps a second before it exits.
	d.startCmd = append(arg.Argv{"/usr/bin/env", helperEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...)
	d.startCmd = append(d.startCmd, self)
	// Whatever a test leaves running, it ends with the test.
	t.Cleanup(func() {
		if pid := d.pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return d
}

// pid is the pid in the pidfile, or 0.
func (d *daemon) pid() int {
	b, err := os.ReadFile(d.pidfile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// running reports whether pid runs (a zombie does not: nobody may reap it here).
func running(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	return s[0] != 'Z' && s[0] != 'X'
}

func (d *daemon) definition() Definition {
	return Definition{Manager: "pidfile", Pidfile: d.pidfile, StartCmd: d.startCmd, LogFile: filepath.Join(d.dir, "etcd.log")}
}

// entry is the daemon's definition as a services host var, as the inventory
// decodes it from YAML.
func (d *daemon) entry() map[string]any {
	argv := make([]any, len(d.startCmd))
	for i, a := range d.startCmd {
		argv[i] = a
	}
	return map[string]any{"manager": "pidfile", "pidfile": d.pidfile, "start_cmd": argv, "log_file": filepath.Join(d.dir, "etcd.log")}
}

func host(vars map[string]any) *modules.Host {
	return &modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Conn: local.New(), Log: zerolog.Nop(), Vars: vars}
}

func mod(a action, m Module) *Module {
	m.action = a
	return &m
}

func roundTrip(t *testing.T, r modules.Result) modules.Result {
	t.Helper()
	b, err := json.Marshal(r.Data)
	if err != nil {
		t.Fatalf("result data is not JSON-safe: %v", err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	return modules.Result{Changed: r.Changed, Data: data}
}

func TestStartStopUndo(t *testing.T) {
	ctx := testCtx(t)
	d := newDaemon(t, "serve")
	h := host(nil)
	startM := mod(start, Module{Service: "etcd", Definition: d.definition(), Wait: sec(10)})
	stopM := mod(stop, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: d.pidfile}, Wait: sec(10)})
	for _, m := range []*Module{startM, stopM} {
		if err := m.Validate(); err != nil {
			t.Fatalf("%s does not validate: %v", m.action, err)
		}
	}

	started, err := startM.Run(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	pid := d.pid()
	if !started.Changed || !running(pid) || started.Data["pid"] != pid || started.Data["state_before"] != "stopped" || started.Data["manager"] != "pidfile" {
		t.Fatalf("start = %+v; pid %d running %v", started, pid, running(pid))
	}
	again, err := startM.Run(ctx, h)
	if err != nil || again.Changed || again.Data["state_before"] != "running" {
		t.Errorf("second start = %+v, %v; want no change", again, err)
	}

	// A stop step needs no start_cmd, but says that it could not be undone;
	// its result goes through the journal.
	var logged bytes.Buffer
	h.Log = zerolog.New(&logged)
	stopped, err := stopM.Run(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	h.Log = zerolog.Nop()
	if !strings.Contains(logged.String(), "the automatic rollback cannot start the service again") {
		t.Errorf("the stop did not warn that it cannot be undone; log: %s", logged.String())
	}
	if !stopped.Changed || running(pid) || stopped.Data["killed"] != false || stopped.Data["state_before"] != "running" {
		t.Fatalf("stop = %+v; pid %d running %v", stopped, pid, running(pid))
	}
	if again, err := stopM.Run(ctx, h); err != nil || again.Changed {
		t.Errorf("second stop = %+v, %v; want no change", again, err)
	}

	// Undo of the stop starts it again, with a definition that says how.
	if err := stopM.Undo(ctx, h, roundTrip(t, stopped)); err == nil || !strings.Contains(err.Error(), "start_cmd: is required to start a service with manager pidfile") {
		t.Errorf("undo of a stop that cannot say how to start = %v", err)
	}
	stopWithStart := mod(stop, Module{Service: "etcd", Definition: d.definition(), Wait: sec(10)})
	if err := stopWithStart.Undo(ctx, h, roundTrip(t, stopped)); err != nil {
		t.Fatal(err)
	}
	if !running(d.pid()) {
		t.Fatal("undo of stop did not start the service")
	}
	// Undo of the start stops it.
	pid = d.pid()
	if err := startM.Undo(ctx, h, roundTrip(t, started)); err != nil {
		t.Fatal(err)
	}
	if running(pid) {
		t.Error("undo of start left the service running")
	}
}

// TestUndoOfNoChange: a step that changed nothing is not undone, and the
// host is not even asked.
func TestUndoOfNoChange(t *testing.T) {
	f := conntest.New(t)
	h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop()}
	for _, a := range []action{start, stop} {
		if err := mod(a, Module{Service: "etcd"}).Undo(testCtx(t), h, modules.Result{Data: map[string]any{"manager": "systemd"}}); err != nil {
			t.Errorf("undo of an unchanged %s: %v", a, err)
		}
	}
	if len(f.Calls()) > 0 {
		t.Errorf("ran %v", f.Commands())
	}
}

func TestServicesVar(t *testing.T) {
	d := newDaemon(t, "serve")
	other := newDaemon(t, "serve")
	tests := []struct {
		name        string
		vars        map[string]any
		def         Definition
		wantPidfile string // where the daemon's pid must be
	}{
		{"entry alone", map[string]any{"services": map[string]any{"etcd": d.entry()}}, Definition{}, d.pidfile},
		{"the step wins", map[string]any{"services": map[string]any{"etcd": d.entry()}}, Definition{Pidfile: other.pidfile}, other.pidfile},
		{"manager from service_manager", map[string]any{"service_manager": "pidfile", "services": map[string]any{"etcd": func() map[string]any {
			e := d.entry()
			delete(e, "manager")
			return e
		}()}}, Definition{}, d.pidfile},
		{"command string split into words", map[string]any{"services": map[string]any{"etcd": func() map[string]any {
			e := d.entry()
			e["start_cmd"] = strings.Join(d.startCmd, " ")
			return e
		}()}}, Definition{}, d.pidfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(tt.vars)
			m := mod(start, Module{Service: "etcd", Definition: tt.def, Wait: sec(10)})
			res, err := m.Run(testCtx(t), h)
			if err != nil {
				t.Fatal(err)
			}
			pid := res.Data["pid"].(int)
			if !running(pid) {
				t.Fatalf("pid %d is not running", pid)
			}
			b, err := os.ReadFile(tt.wantPidfile)
			if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
				t.Errorf("%s holds %q (%v), want %d", tt.wantPidfile, b, err, pid)
			}
			if _, err := mod(stop, Module{Service: "etcd", Definition: tt.def}).Run(testCtx(t), h); err != nil {
				t.Fatal(err)
			}
			if running(pid) {
				t.Errorf("pid %d runs after the stop", pid)
			}
		})
	}
}

func TestServicesVarErrors(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]any
		def  Definition
		act  action
		want string
	}{
		{"services is a list", map[string]any{"services": []any{"etcd"}}, Definition{}, stop,
			"stop etcd: host var services must be a map of service names to their definitions, like {etcd: {manager: pidfile, ...}}; got a list"},
		{"entry is a string", map[string]any{"services": map[string]any{"etcd": "pidfile"}}, Definition{}, stop,
			`stop etcd: host var services.etcd must be a map of keys such as manager, pidfile and start_cmd; got the string "pidfile"`},
		{"misspelt key", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "pidfile", "pidfle": "/run/etcd.pid"}}}, Definition{}, stop,
			`stop etcd: unknown key "pidfle" in host var services.etcd; did you mean "pidfile"?`},
		{"wrong type", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "pidfile", "pidfile": "/run/etcd.pid", "kill_after": 5}}}, Definition{}, stop,
			`stop etcd: host var services.etcd: "kill_after" must be a positive duration like "90s", got 5; add a unit: "5s"`},
		{"manager unknown", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "upstart"}}}, Definition{}, stop,
			`stop etcd (with host var services.etcd): manager: "upstart" is not a service manager; use one of systemd, pidfile, command`},
		{"required argument missing", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "pidfile", "pidfile": "/run/etcd.pid"}}}, Definition{}, start,
			"start etcd (with host var services.etcd): start_cmd: is required to start a service with manager pidfile"},
		{"the step's argument unused by the entry's manager", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "command"}}},
			Definition{Pidfile: "/run/etcd.pid"}, stop, "pidfile: is not used by manager command"},
		{"relative path in the entry", map[string]any{"services": map[string]any{"etcd": map[string]any{"manager": "pidfile", "pidfile": "run/etcd.pid"}}}, Definition{}, stop,
			`pidfile: "run/etcd.pid" is relative`},
		{"service_manager not a string", map[string]any{"service_manager": 3}, Definition{}, stop,
			"stop etcd: host var service_manager must name a manager (systemd, pidfile, command), got int 3"},
		{"service_manager unknown", map[string]any{"service_manager": "runit"}, Definition{}, stop,
			`stop etcd (with host var service_manager): manager: "runit" is not a service manager`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conntest.New(t) // nothing may run on a definition that is wrong
			h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), Vars: tt.vars}
			m := mod(tt.act, Module{Service: "etcd", Definition: tt.def})
			for _, do := range []func(context.Context, *modules.Host) (modules.Result, error){m.Run, m.Check} {
				_, err := do(testCtx(t), h)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
				}
			}
			if len(f.Calls()) > 0 {
				t.Errorf("ran %v", f.Commands())
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestReadyAndRestart(t *testing.T) {
	addr := freeAddr(t)
	d := newDaemon(t, "serve", listenEnv+"="+addr)
	h := host(nil)
	def := d.definition()
	def.Ready = &Ready{TCP: addr}
	res, err := mod(start, Module{Service: "etcd", Definition: def, Wait: sec(10)}).Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	first := res.Data["pid"].(int)

	r := Restart{Service: "etcd", Definition: def, Wait: sec(10), action: restart}
	res, err = r.Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	second := res.Data["pid"].(int)
	if !res.Changed || second == first || running(first) || !running(second) || res.Data["state_before"] != "running" {
		t.Errorf("restart = %+v; first pid %d running %v, second %d running %v", res, first, running(first), second, running(second))
	}
	if res, err := r.Check(testCtx(t), h); err != nil || !res.Changed || res.Data["msg"] != "would restart etcd (now running)" {
		t.Errorf("restart Check = %+v, %v", res, err)
	}
	if _, err := mod(stop, Module{Service: "etcd", Definition: Definition{Manager: "pidfile", Pidfile: d.pidfile}}).Run(testCtx(t), h); err != nil {
		t.Fatal(err)
	}

	// A daemon that never listens is started, then fails the readiness wait.
	never := newDaemon(t, "serve")
	def = never.definition()
	def.Ready = &Ready{TCP: freeAddr(t)}
	res, err = mod(start, Module{Service: "etcd", Definition: def, Wait: sec(1)}).Run(testCtx(t), h)
	if err == nil || !strings.Contains(err.Error(), "etcd runs, but is not ready: timed out after") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("start without readiness = %v", err)
	}
	if !res.Changed || !running(never.pid()) {
		t.Errorf("the start itself is reported: %+v", res)
	}
}

func TestStopKills(t *testing.T) {
	d := newDaemon(t, "ignore-term")
	h := host(nil)
	def := d.definition()
	// The daemon ignores TERM only once its runtime is up and says so.
	pid := startReady(t, h, d, def, sec(10), "ignore-term", 1)
	def.KillAfter = arg.Duration(200 * time.Millisecond)
	res, err := mod(stop, Module{Service: "etcd", Definition: def, Wait: sec(5)}).Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["killed"] != true || running(pid) {
		t.Errorf("stop = %+v; pid %d running %v", res, pid, running(pid))
	}
}

// startReady starts d through the module and waits until its log says
// "ready: mode" the nth time; it returns the new process's pid.
func startReady(t *testing.T, h *modules.Host, d *daemon, def Definition, wait arg.Duration, mode string, n int) int {
	t.Helper()
	if _, err := mod(start, Module{Service: "etcd", Definition: def, Wait: wait}).Run(testCtx(t), h); err != nil {
		t.Fatal(err)
	}
	pid := d.pid()
	waitFor(t, func() bool {
		b, _ := os.ReadFile(def.LogFile)
		return strings.Count(string(b), "ready: "+mode) >= n
	})
	return pid
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheck(t *testing.T) {
	d := newDaemon(t, "serve")
	h := host(map[string]any{"services": map[string]any{"etcd": d.entry()}})
	res, err := mod(start, Module{Service: "etcd"}).Check(testCtx(t), h)
	if err != nil || !res.Changed || res.Data["msg"] != "would start etcd (now stopped)" {
		t.Errorf("Check start = %+v, %v", res, err)
	}
	if d.pid() != 0 {
		t.Fatal("Check started the service")
	}
	res, err = mod(stop, Module{Service: "etcd"}).Check(testCtx(t), h)
	if err != nil || res.Changed || res.Data["msg"] != "etcd is stopped already" {
		t.Errorf("Check stop = %+v, %v", res, err)
	}
}

// TestSystemdThroughConn runs the systemd manager on a scripted host: become
// reaches every command, and the result says what changed.
func TestSystemdThroughConn(t *testing.T) {
	f := conntest.New(t)
	f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout("active\n").Times(2)
	f.On(conntest.Exact("systemctl", "stop", "etcd"))
	f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout("inactive\n").Exit(3)
	h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), Become: true, Vars: map[string]any{"service_manager": "systemd"}}
	res, err := mod(stop, Module{Service: "etcd"}).Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Data["manager"] != "systemd" || res.Data["state_before"] != "running" {
		t.Errorf("stop = %+v", res)
	}
	for _, c := range f.Calls() {
		if !c.Cmd.Become {
			t.Errorf("%s ran without become", c.Cmd)
		}
	}

	// A lost connection is an error with the step's context.
	f = conntest.New(t)
	f.FailAfter(0, nil)
	h.Conn = f
	if _, err := mod(start, Module{Service: "etcd"}).Run(testCtx(t), h); err == nil || !strings.Contains(err.Error(), "start etcd (with host var service_manager): etcd: status: ") {
		t.Errorf("start over a lost connection = %v", err)
	}
}

// TestStopKillWhenUnlocked stops a real daemon that releases its data's
// lock on TERM and lingers: the stop cuts the lingering short and says so,
// and --check signals nothing.
func TestStopKillWhenUnlocked(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "db")
	if err := os.WriteFile(lock, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "lock-linger", lockEnv+"="+lock)
	var log bytes.Buffer
	h := host(nil)
	h.Log = zerolog.New(&log)
	def := d.definition()
	pid := startReady(t, h, d, def, sec(10), "lock-linger", 1)
	// kill_after far beyond the lingering's end: only the unlock can cut it short.
	def.KillAfter = sec(25)
	step := mod(stop, Module{Service: "etcd", Definition: def, Wait: sec(50), KillWhenUnlocked: &lock})

	res, err := step.Check(testCtx(t), h)
	if err != nil || !res.Changed || !running(pid) || res.Data["killed"] != false {
		t.Fatalf("Check = %+v, %v; pid %d running %v", res, err, pid, running(pid))
	}

	res, err = step.Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	res = roundTrip(t, res)
	reason, _ := res.Data["kill_reason"].(string)
	msg, _ := res.Data["msg"].(string)
	if res.Data["killed"] != true || !strings.HasSuffix(reason, "after TERM: "+lock+" unlocked") || running(pid) {
		t.Errorf("stop = %+v; pid %d running %v", res, pid, running(pid))
	}
	if want := "stopped etcd (pid " + strconv.Itoa(pid) + "): " + reason; msg != want {
		t.Errorf("msg = %q, want %q", msg, want)
	}
	if !strings.Contains(log.String(), `"level":"info"`) || !strings.Contains(log.String(), reason) {
		t.Errorf("log = %s", log.String())
	}

	// A restart's stop cuts the lingering short too, and says so.
	pid = startReady(t, h, d, def, sec(50), "lock-linger", 2)
	r := Restart(Module{Service: "etcd", Definition: def, Wait: sec(50), KillWhenUnlocked: &lock})
	res, err = r.Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if reason, _ := res.Data["kill_reason"].(string); res.Data["killed"] != true || !strings.HasSuffix(reason, lock+" unlocked") || running(pid) || d.pid() == pid {
		t.Errorf("restart = %+v; old pid %d running %v, new pid %d", res, pid, running(pid), d.pid())
	}
}

// A manager from the host that cannot honour kill_when_unlocked (a step
// naming it is refused at load) stops as without it, and says why.
func TestKillWhenUnlockedWithHostManager(t *testing.T) {
	f := conntest.New(t)
	f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout("active\n").Times(1)
	f.On(conntest.Exact("systemctl", "stop", "etcd"))
	f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout("inactive\n").Exit(3)
	var log bytes.Buffer
	h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.New(&log), Vars: map[string]any{"service_manager": "systemd"}}
	db := "/var/lib/etcd/member/snap/db"
	res, err := mod(stop, Module{Service: "etcd", KillWhenUnlocked: &db}).Run(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	want := "stopped etcd: kill_when_unlocked did not apply: it is not supported by the systemd manager: systemctl stop waits"
	if msg, _ := res.Data["msg"].(string); !res.Changed || res.Data["killed"] != false || !strings.HasPrefix(msg, want) {
		t.Errorf("stop = %+v, want msg %q...", res, want)
	}
	if !strings.Contains(log.String(), `"level":"warn"`) || !strings.Contains(log.String(), "not supported by the systemd manager") {
		t.Errorf("log = %s", log.String())
	}
}
