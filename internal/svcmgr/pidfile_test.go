package svcmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
)

// testCtx bounds a test's calls so a bug cannot hang the test binary.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// helperService is a pidfile service running this test binary in mode. Every
// pid it ever writes is SIGKILLed when the test ends.
func helperService(t *testing.T, mode string) Service {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := Service{
		Name:     "etcd",
		Pidfile:  filepath.Join(dir, "etcd.pid"),
		StartCmd: []string{self},
		LogFile:  filepath.Join(dir, "etcd.log"),
		Dir:      dir,
		// GORACE: a -race binary otherwise sleeps a second before it exits.
		Env:  map[string]string{helperEnv: mode, "RUNBOOK_SERVICE_EXTRA": "a 'quoted' $value", "GORACE": "atexit_sleep_ms=0"},
		Wait: 10 * time.Second,
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(s.Pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return s
}

func killAtEnd(t *testing.T, pid int) {
	if pid > 0 {
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}
}

// gone reports whether pid runs nothing: it does not exist, or is a zombie
// (this machine's init may never reap orphans).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	return s[0] == 'Z' || s[0] == 'X'
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPidfileLifecycle(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), pidfile{}
	s := helperService(t, "serve")

	if st, err := m.Status(ctx, c, s); err != nil || st != Stopped {
		t.Fatalf("before start: Status = %v, %v; want stopped", st, err)
	}
	res, err := m.Start(ctx, c, s)
	killAtEnd(t, res.PID)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.PID <= 0 || res.Before != Stopped {
		t.Fatalf("Start = %+v, want changed with a pid, stopped before", res)
	}
	if got := strings.TrimSpace(readFile(t, s.Pidfile)); got != strconv.Itoa(res.PID) {
		t.Errorf("pidfile holds %q, want %d", got, res.PID)
	}
	if gone(res.PID) {
		t.Fatalf("pid %d is not running", res.PID)
	}
	if st, err := m.Status(ctx, c, s); err != nil || st != Running {
		t.Errorf("after start: Status = %v, %v; want running", st, err)
	}
	// The process runs in Dir with Env, and its output goes to the log.
	if log := readFile(t, s.LogFile); !strings.Contains(log, "ready in "+s.Dir+" with a 'quoted' $value") {
		t.Errorf("log = %q", log)
	}
	// It runs in a session of its own, so our process group's end cannot reach it.
	if sid, err := getsid(res.PID); err != nil || sid != res.PID {
		t.Errorf("session of %d = %d, %v; want its own", res.PID, sid, err)
	}

	again, err := m.Start(ctx, c, s)
	if err != nil || again.Changed || again.PID != res.PID || again.Before != Running {
		t.Errorf("second Start = %+v, %v; want unchanged with pid %d, running before", again, err, res.PID)
	}

	stop, err := m.Stop(ctx, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if !stop.Changed || stop.Killed || stop.PID != res.PID || stop.Before != Running {
		t.Errorf("Stop = %+v, want changed, not killed, pid %d, running before", stop, res.PID)
	}
	if !gone(res.PID) {
		t.Errorf("pid %d still runs after Stop", res.PID)
	}
	if _, err := os.Stat(s.Pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile not removed: %v", err)
	}
	if log := readFile(t, s.LogFile); !strings.Contains(log, "got terminated") {
		t.Errorf("the process did not get SIGTERM; log = %q", log)
	}

	if again, err := m.Stop(ctx, c, s); err != nil || again.Changed || again.Before != Stopped {
		t.Errorf("second Stop = %+v, %v; want unchanged, stopped before", again, err)
	}
	if st, err := m.Status(ctx, c, s); err != nil || st != Stopped {
		t.Errorf("after stop: Status = %v, %v", st, err)
	}
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func TestPidfileKillsAfterKillAfter(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), pidfile{}
	s := helperService(t, "ignore-term")
	s.KillAfter = 300 * time.Millisecond
	s.Wait = 5 * time.Second

	res, err := m.Start(ctx, c, s)
	killAtEnd(t, res.PID)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	stop, err := m.Stop(ctx, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if !stop.Changed || !stop.Killed {
		t.Errorf("Stop = %+v, want changed and killed", stop)
	}
	if time.Since(begin) < s.KillAfter {
		t.Errorf("SIGKILL came before KillAfter")
	}
	if !gone(res.PID) {
		t.Errorf("pid %d still runs", res.PID)
	}
	if _, err := os.Stat(s.Pidfile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile not removed: %v", err)
	}
}

func TestPidfileStartFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(s *Service)
		want    []string
		wantNot []string
	}{
		{"exits at once", func(s *Service) { *s = helperService(t, "fail") },
			[]string{"etcd exited right after start (pid ", "), saying: fatal: bad config in /etc/etcd.conf.yml (the end of its output in "}, nil},
		// The log is appended to: what the process before wrote when it
		// stopped is not the new one's last words.
		{"the previous process's log is left out", func(s *Service) {
			*s = helperService(t, "fail")
			old := strings.Repeat(`{"level":"info","msg":"the previous process stops"}`+"\n", 30)
			if err := os.WriteFile(s.LogFile, []byte(old), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"), saying: fatal: bad config in /etc/etcd.conf.yml ("}, []string{"previous process", "\n"}},
		{"missing binary", func(s *Service) { s.StartCmd = []string{"/nonexistent/etcd", "--name", "x"} },
			[]string{"exited right after start", "/nonexistent/etcd"}, nil},
		{"output discarded", func(s *Service) { *s = helperService(t, "fail"); s.LogFile = "" },
			[]string{"exited right after start", "its output was discarded"}, nil},
		{"log folder cannot be made", func(s *Service) { s.LogFile = filepath.Join(blocker(t), "sub", "etcd.log") },
			[]string{"etcd: start: exit status 1: ", "mkdir", "Not a directory"}, nil},
		{"dir missing", func(s *Service) { s.Dir = filepath.Join(s.Dir, "nope") },
			[]string{"etcd: start: exit status ", "nope"}, nil},
		{"pidfile folder cannot be made", func(s *Service) { s.Pidfile = filepath.Join(blocker(t), "sub", "etcd.pid") },
			[]string{"etcd: start: exit status ", "Not a directory"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := helperService(t, "serve")
			tt.setup(&s)
			res, err := pidfile{}.Start(testCtx(t), local.New(), s)
			killAtEnd(t, res.PID)
			if err == nil {
				t.Fatalf("Start = %+v, want an error", res)
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
			if res.PID > 0 && !gone(res.PID) {
				t.Errorf("a failed start left pid %d running", res.PID)
			}
			// ENOTDIR too: below a file, no pidfile can exist.
			if _, err := os.Stat(s.Pidfile); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("a failed start left its pidfile: %v", err)
			}
		})
	}
}

func TestPidfileStatus(t *testing.T) {
	// A process that exited and was not reaped: kill -0 succeeds, yet it runs nothing.
	zombie := exec.Command("sh", "-c", "exit 0")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	for i := 0; !gone(zombie.Process.Pid); i++ {
		if i == 1000 {
			t.Fatal("the child never exited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A pid that surely runs: ours.
	self := strconv.Itoa(os.Getpid())
	// A pid that surely does not: beyond pid_max.
	const stale = "99999999"

	tests := []struct {
		name    string
		content string // "" means no pidfile
		want    State
		errHas  string
	}{
		{"no pidfile", "", Stopped, ""},
		{"running", self + "\n", Running, ""},
		{"no newline", self, Running, ""},
		{"stale", stale + "\n", Stopped, ""},
		{"zombie", strconv.Itoa(zombie.Process.Pid), Stopped, ""},
		{"garbage", "etcd\n", Unknown, `holds "etcd", not a pid`},
		{"empty", "\n", Unknown, "not a pid"},
		{"zero would signal our group", "0\n", Unknown, "not a pid"},
		{"negative", "-1\n", Unknown, "not a pid"},
		{"shell in pidfile", "$(touch x)\n", Unknown, "not a pid"},
		{"a second line", self + "\n" + self + "\n", Unknown, "not a pid"},
		{"trailing newlines", self + "\n\n", Running, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := Service{Name: "etcd", Pidfile: filepath.Join(dir, "it's.pid"), StartCmd: []string{"x"}}
			if tt.content != "" {
				if err := os.WriteFile(s.Pidfile, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			st, err := pidfile{}.Status(testCtx(t), local.New(), s)
			if st != tt.want {
				t.Errorf("Status = %v, want %v (err %v)", st, tt.want, err)
			}
			if tt.errHas == "" && err != nil || tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Errorf("err = %v, want %q", err, tt.errHas)
			}
			if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
				t.Error("the pidfile's content was run")
			}
		})
	}
}

// With CDPATH set, cd prints the folder it went to; the pid must still be read.
func TestPidfileStartWithCDPATH(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), pidfile{}
	s := helperService(t, "serve")
	s.Env["CDPATH"] = filepath.Dir(s.Dir)
	s.Dir = filepath.Base(s.Dir)
	res, err := m.Start(ctx, c, s)
	killAtEnd(t, res.PID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stop(ctx, c, s); err != nil {
		t.Fatal(err)
	}
}

func TestPidfileStartReplacesStalePidfile(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), pidfile{}
	s := helperService(t, "serve")
	if err := os.WriteFile(s.Pidfile, []byte("99999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := m.Start(ctx, c, s)
	killAtEnd(t, res.PID)
	if err != nil || !res.Changed {
		t.Fatalf("Start = %+v, %v", res, err)
	}
	if got := strings.TrimSpace(readFile(t, s.Pidfile)); got != strconv.Itoa(res.PID) {
		t.Errorf("pidfile = %q, want %d", got, res.PID)
	}
	if _, err := m.Stop(ctx, c, s); err != nil {
		t.Fatal(err)
	}
}

// fakeStatus answers the pidfile status script with line.
func fakeStatus(f *conntest.Fake, line string) *conntest.Rule {
	return f.On(conntest.Func("pidfile status", func(c conn.Cmd) bool { return strings.Contains(c.Shell, "echo none") })).Stdout(line + "\n")
}

func TestPidfileStopTimeoutSaysWhatItSaw(t *testing.T) {
	f := conntest.New(t)
	fakeStatus(f, "running 1234")
	term := f.On(conntest.Regexp(`kill -s TERM 1234 `))
	kill := f.On(conntest.Regexp(`kill -s KILL 1234 `))
	s := Service{Name: "etcd", Pidfile: "/run/etcd.pid", StartCmd: []string{"etcd"},
		Wait: 200 * time.Millisecond, KillAfter: 50 * time.Millisecond, Become: true}

	res, err := pidfile{}.Stop(testCtx(t), f, s)
	want := "etcd did not stop within 200ms; pid 1234 still running (sent SIGTERM, then SIGKILL after 50ms)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !res.Killed || !res.Changed || res.PID != 1234 {
		t.Errorf("Result = %+v", res)
	}
	if term.Matched() != 1 || kill.Matched() != 1 {
		t.Errorf("TERM sent %d times, KILL %d times; want once each", term.Matched(), kill.Matched())
	}
	for _, call := range f.Calls() {
		if !call.Cmd.Become {
			t.Errorf("%s ran without become", call.Cmd)
		}
	}
}

func TestPidfileStopSignal(t *testing.T) {
	tests := []struct{ signal, sent string }{{"", "TERM"}, {"sigint", "INT"}, {"QUIT", "QUIT"}, {"KILL", "KILL"}}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			f := conntest.New(t)
			fakeStatus(f, "running 77").Times(1)
			sent := f.On(conntest.Exact("/bin/sh", "-c", "kill -s "+tt.sent+" 77 || ! kill -0 77 2>/dev/null"))
			fakeStatus(f, "stale 77")
			f.On(conntest.Func("remove pidfile", func(c conn.Cmd) bool { return strings.Contains(c.Shell, "rm -f") }))
			s := Service{Name: "etcd", Pidfile: "/run/etcd.pid", StartCmd: []string{"etcd"}, Signal: tt.signal}
			res, err := pidfile{}.Stop(testCtx(t), f, s)
			if err != nil || !res.Changed || res.Killed {
				t.Fatalf("Stop = %+v, %v", res, err)
			}
			if sent.Matched() != 1 {
				t.Errorf("commands = %q", f.Commands())
			}
		})
	}
}

// blocker returns a path that is a file, so no folder can be made below it.
func blocker(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPidfileStartMakesFolders(t *testing.T) {
	s := helperService(t, "serve")
	s.Pidfile = filepath.Join(s.Dir, "run", "etcd.pid")
	s.LogFile = filepath.Join(s.Dir, "log", "etcd.log")
	res, err := pidfile{}.Start(testCtx(t), local.New(), s)
	killAtEnd(t, res.PID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Pidfile, s.LogFile} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestLastWords(t *testing.T) {
	tests := []struct{ out, want string }{
		{"", ""},
		{"\n\n", ""},
		{"bad flag\n", "bad flag"},
		{"a\nb\n\nc\nd\ne\nf\n", "b | c | d | e | f"},
		{`{"level":"fatal","ts":"2026-12-07T12:00:00Z","msg":"discovery failed","error":"cannot fetch cluster info"}` + "\n",
			"fatal: discovery failed: cannot fetch cluster info"},
		{`{"not":"a log line"}`, `{"not":"a log line"}`},
	}
	for _, tt := range tests {
		if got := LastWords(tt.out); got != tt.want {
			t.Errorf("LastWords(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

// With a readiness probe, a start is done once the process serves, and a
// process that exits while the probe has not passed is still a failed start.
func TestPidfileStartWithReady(t *testing.T) {
	t.Run("ready", func(t *testing.T) {
		s := helperService(t, "serve")
		tries := 0
		s.Ready = func(ctx context.Context) (bool, string, error) {
			tries++
			b, _ := os.ReadFile(s.LogFile)
			if strings.Contains(string(b), "ready in") {
				return true, "it said ready", nil
			}
			return false, "not ready yet", nil
		}
		res, err := pidfile{}.Start(testCtx(t), local.New(), s)
		killAtEnd(t, res.PID)
		if err != nil {
			t.Fatal(err)
		}
		if tries == 0 || gone(res.PID) {
			t.Errorf("Start = %+v after %d probes; want a running process, probed", res, tries)
		}
	})
	t.Run("exits before ready", func(t *testing.T) {
		s := helperService(t, "fail")
		s.Ready = func(ctx context.Context) (bool, string, error) { return false, "not ready yet", nil }
		res, err := pidfile{}.Start(testCtx(t), local.New(), s)
		killAtEnd(t, res.PID)
		if err == nil || !strings.Contains(err.Error(), "exited right after start") {
			t.Fatalf("Start = %+v, %v; want it to report the exit", res, err)
		}
	})
	t.Run("probe error", func(t *testing.T) {
		s := helperService(t, "serve")
		s.Ready = func(ctx context.Context) (bool, string, error) {
			return false, "", errors.New("connection to the host lost")
		}
		res, err := pidfile{}.Start(testCtx(t), local.New(), s)
		killAtEnd(t, res.PID)
		if err == nil || !strings.Contains(err.Error(), "connection to the host lost") {
			t.Fatalf("Start = %+v, %v; want the probe's error", res, err)
		}
	})
	t.Run("refused by other managers", func(t *testing.T) {
		ready := func(ctx context.Context) (bool, string, error) { return true, "", nil }
		for _, m := range []Manager{systemd{}, command{}} {
			s := Service{Name: "etcd", StartCmd: []string{"true"}, StopCmd: []string{"true"}, Ready: ready}
			if _, isSystemd := m.(systemd); isSystemd {
				s.StartCmd, s.StopCmd = nil, nil
			}
			if err := m.Validate(s); err == nil || !strings.Contains(err.Error(), "Ready: is not used") {
				t.Errorf("%T: Validate = %v, want Ready refused", m, err)
			}
		}
	})
}

// The last check of a stop removes the pidfile of the process it stopped,
// and only that one: a pidfile someone else wrote meanwhile stays.
func TestPidfileStoppedHookRemovesOnlyItsPid(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), pidfile{}
	s := helperService(t, "serve")
	// A pid that runs no process: the highest a pid can be, plus one.
	dead := 1 << 22
	for _, tc := range []struct {
		name    string
		holds   int
		stopped int
		kept    bool
	}{
		{"the pid stopped", dead, dead, false},
		{"another pid", dead, dead - 1, true},
	} {
		if err := os.WriteFile(s.Pidfile, []byte(strconv.Itoa(tc.holds)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		st, pid, _, err := m.statusThen(ctx, c, s, fmt.Sprintf(stoppedHook, tc.stopped))
		if err != nil || st != Stopped || pid != tc.holds {
			t.Fatalf("%s: status = %v, %d, %v; want stopped, %d", tc.name, st, pid, err, tc.holds)
		}
		_, err = os.Stat(s.Pidfile)
		if kept := err == nil; kept != tc.kept {
			t.Errorf("%s: pidfile kept = %v, want %v", tc.name, kept, tc.kept)
		}
	}
}

// lockService is a helper daemon in mode that locks the file lock (made
// here), started and seen ready: it holds its lock once Start returns.
func lockService(t *testing.T, mode string) (s Service, lock string, pid int) {
	t.Helper()
	s = helperService(t, mode)
	lock = filepath.Join(s.Dir, "member", "snap", "db")
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Env[lockEnv] = lock
	s.Ready = func(ctx context.Context) (bool, string, error) {
		b, _ := os.ReadFile(s.LogFile)
		return strings.Contains(string(b), "ready, mode"), "not ready yet", nil
	}
	res, err := pidfile{}.Start(testCtx(t), local.New(), s)
	killAtEnd(t, res.PID)
	if err != nil {
		t.Fatal(err)
	}
	s.Ready = nil
	return s, lock, res.PID
}

// noFlockPath is a PATH with the commands the status check runs, but no flock.
func noFlockPath(t *testing.T) string {
	return pathWithFlock(t, "")
}

// pathWithFlock is a PATH with the commands the status check runs, and a
// flock that is this script, if not empty.
func pathWithFlock(t *testing.T, script string) string {
	dir := t.TempDir()
	if script != "" {
		if err := os.WriteFile(filepath.Join(dir, "flock"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"cat", "rm", "ps"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPidfileKillWhenUnlocked stops real processes that lock a file as a
// database does. Only a process that released the lock it held as the stop
// began, and still runs, gets the early SIGKILL; otherwise the stop goes on
// as without the option, the kill-after timer included.
func TestPidfileKillWhenUnlocked(t *testing.T) {
	const (
		early  = "early"  // SIGKILL once unlocked
		timer  = "timer"  // SIGKILL at KillAfter
		exited = "exited" // no SIGKILL
	)
	tests := []struct {
		name   string
		mode   string
		edit   func(t *testing.T, s *Service, lock string) // before Stop
		want   string
		note   string // in Result.Note
		absent bool   // KillWhenUnlocked names no file, and must not get one
	}{
		{"unlocked and lingering: killed", "lock-linger",
			func(t *testing.T, s *Service, lock string) { s.KillWhenUnlocked = lock }, early, "", false},
		{"without the option: the kill-after timer", "lock-linger",
			func(t *testing.T, s *Service, lock string) { s.KillAfter = 300 * time.Millisecond }, timer, "", false},
		{"keeps the lock and exits: not killed", "lock-exit",
			func(t *testing.T, s *Service, lock string) { s.KillWhenUnlocked = lock }, exited, "", false},
		{"no such file: the kill-after timer", "lock-linger",
			func(t *testing.T, s *Service, lock string) {
				s.KillWhenUnlocked, s.KillAfter = filepath.Join(filepath.Dir(lock), "nodb"), 300*time.Millisecond
			}, timer, "there is no file ", true},
		{"not locked as the stop began: the kill-after timer", "linger",
			func(t *testing.T, s *Service, lock string) {
				s.KillWhenUnlocked, s.KillAfter = lock, 300*time.Millisecond
			},
			timer, " was not locked when the stop began", false},
		{"no flock on the host: the kill-after timer", "lock-linger",
			func(t *testing.T, s *Service, lock string) {
				s.KillWhenUnlocked, s.KillAfter = lock, 300*time.Millisecond
				s.Env["PATH"] = noFlockPath(t)
			}, timer, "the host has no flock command", false},
		// busybox's flock has no -E: it refuses the option, or answers a
		// conflict with 1, which must not pass for "unlocked".
		{"a flock that answers 1: the kill-after timer", "lock-linger",
			func(t *testing.T, s *Service, lock string) {
				s.KillWhenUnlocked, s.KillAfter = lock, 300*time.Millisecond
				s.Env["PATH"] = pathWithFlock(t, "exit 1")
			}, timer, "could not be checked", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, lock, pid := lockService(t, tt.mode)
			s.Wait = 20 * time.Second
			s.KillAfter = 10 * time.Second
			tt.edit(t, &s, lock)
			res, err := pidfile{}.Stop(testCtx(t), local.New(), s)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if !res.Changed || res.PID != pid || !gone(pid) {
				t.Errorf("Stop = %+v; pid %d gone: %v", res, pid, gone(pid))
			}
			if _, err := os.Stat(s.Pidfile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile not removed: %v", err)
			}
			switch tt.want {
			case early:
				want := "after TERM: " + lock + " unlocked"
				if !res.Killed || !res.Unlocked || !strings.HasPrefix(res.KillReason, "SIGKILL ") || !strings.HasSuffix(res.KillReason, want) {
					t.Errorf("Stop = %+v; want killed once unlocked, the reason ending in %q", res, want)
				}
				// It did release its lock first: the SIGKILL came after.
				if log := readFile(t, s.LogFile); !strings.Contains(log, "got TERM, unlocked") {
					t.Errorf("log = %q", log)
				}
			case timer:
				if !res.Killed || res.Unlocked || !strings.Contains(res.KillReason, "the kill-after limit") {
					t.Errorf("Stop = %+v; want killed by the kill-after timer", res)
				}
			case exited:
				if res.Killed || res.KillReason != "" {
					t.Errorf("Stop = %+v; want no SIGKILL", res)
				}
			}
			if tt.note == "" && res.Note != "" || !strings.Contains(res.Note, tt.note) {
				t.Errorf("Note = %q, want %q in it", res.Note, tt.note)
			}
			if tt.absent {
				if _, err := os.Stat(s.KillWhenUnlocked); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the lock check made %s: %v", s.KillWhenUnlocked, err)
				}
			}
		})
	}
}
