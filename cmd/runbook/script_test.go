package main

import (
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runbookhq/runbook/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/script")

// TestMain lets the test binary impersonate the runbook CLI, so scripts run the
// real command line in a real process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"runbook": func() {
			// Scripts judge change windows at a time of their choosing;
			// only this test binary reads the variable.
			if v := os.Getenv("RUNBOOK_TEST_NOW"); v != "" {
				now, err := time.Parse(time.RFC3339, v)
				if err != nil {
					panic("RUNBOOK_TEST_NOW: " + err.Error())
				}
				cli.Clock = func() time.Time { return now }
			}
			os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Scripts that need the repository's example runbooks read them from here.
			env.Setenv("REPO", root)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":      exits,
			"waitevent":  waitEvent,
			"countlines": countLines,
			"signalrun":  signalRun,
			"servefile":  serveFile,
		},
	})
}

// exits N CMD ARGS... runs CMD and checks that it exits with status N, which
// `! exec` cannot: our exit codes (1, 2, 3, 4) each mean something else.
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// waitevent STATEDIR KIND [host=H] [step=N] [action=A] waits (at most 60s)
// until the only journal under STATEDIR has an event of KIND (for host H, at
// step index N, with data.action A), and sets $RUN to the run's id. Scripts use it instead of sleeping before a kill.
func waitEvent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: waitevent STATEDIR KIND [host=H] [step=N] [action=A]")
	}
	dir := ts.MkAbs(filepath.Join(args[0], "runs"))
	kind := args[1]
	want := map[string]string{}
	for _, a := range args[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			ts.Fatalf("waitevent: bad filter %q", a)
		}
		want[k] = v
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(files) > 1 {
			ts.Fatalf("waitevent: %d journals in %s, want one", len(files), dir)
		}
		if len(files) == 1 {
			data, _ := os.ReadFile(files[0])
			for _, line := range strings.Split(string(data), "\n") {
				var e struct {
					RunID     string `json:"run_id"`
					Kind      string `json:"kind"`
					Host      string `json:"host"`
					StepIndex *int   `json:"step_index"`
					Data      struct {
						Action string `json:"action"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(line), &e) != nil || e.Kind != kind {
					continue
				}
				if h, ok := want["host"]; ok && e.Host != h {
					continue
				}
				if a, ok := want["action"]; ok && e.Data.Action != a {
					continue
				}
				if n, ok := want["step"]; ok && (e.StepIndex == nil && n != "0" || e.StepIndex != nil && strconv.Itoa(*e.StepIndex) != n) {
					continue
				}
				ts.Setenv("RUN", e.RunID)
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitevent: no %s event %v in %s within 60s", kind, want, dir)
}

// countlines FILE TEXT N checks that exactly N lines of FILE equal TEXT.
func countLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: countlines FILE TEXT N")
	}
	want, err := strconv.Atoi(args[2])
	if err != nil {
		ts.Fatalf("countlines: bad count %q", args[2])
	}
	got := 0
	for _, l := range strings.Split(ts.ReadFile(args[0]), "\n") {
		if l == args[1] {
			got++
		}
	}
	if got != want {
		ts.Fatalf("%s has %d lines %q, want %d", args[0], got, args[1], want)
	}
}

// signalrun STATEDIR SIG sends SIG (HUP, PIPE, TERM, INT) to the process that
// runs the only run under STATEDIR, found by the pid its run_start (or latest
// run_resume) records: testscript's kill knows only INT and KILL.
func signalRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signalrun STATEDIR SIG")
	}
	sigs := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "PIPE": syscall.SIGPIPE, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT}
	sig, ok := sigs[args[1]]
	if !ok {
		ts.Fatalf("signalrun: unknown signal %q", args[1])
	}
	files, _ := filepath.Glob(filepath.Join(ts.MkAbs(args[0]), "runs", "*.jsonl"))
	if len(files) != 1 {
		ts.Fatalf("signalrun: %d journals under %s, want one", len(files), args[0])
	}
	pid := 0
	for _, line := range strings.Split(ts.ReadFile(files[0]), "\n") {
		var e struct {
			Kind string `json:"kind"`
			Data struct {
				PID int `json:"pid"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && (e.Kind == "run_start" || e.Kind == "run_resume") {
			pid = e.Data.PID
		}
	}
	if pid <= 1 {
		ts.Fatalf("signalrun: no pid in %s", files[0])
	}
	ts.Check(syscall.Kill(pid, sig))
}

// servefile FILE serves FILE over HTTP on 127.0.0.1, read anew at each
// request so that the script can change it, and sets $SERVED to its URL.
// The server stops when the script ends, and after two minutes at most.
func serveFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: servefile FILE")
	}
	path := ts.MkAbs(args[0])
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(b)
	})}
	go func() { _ = srv.Serve(l) }()
	stop := time.AfterFunc(2*time.Minute, func() { _ = srv.Close() })
	ts.Defer(func() {
		stop.Stop()
		_ = srv.Close()
	})
	ts.Setenv("SERVED", "http://"+l.Addr().String()+"/"+filepath.Base(path))
}
