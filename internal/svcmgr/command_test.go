package svcmgr

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
)

// stateService is a command service whose "process" is a file in its folder.
func stateService(t *testing.T) Service {
	return Service{
		Name:      "etcd",
		StartCmd:  []string{"sh", "-c", `printf '%s' "$MARK" > state`},
		StopCmd:   []string{"rm", "-f", "state"},
		StatusCmd: []string{"test", "-e", "state"},
		Dir:       t.TempDir(),
		Env:       map[string]string{"MARK": "started with env"},
		Wait:      5 * time.Second,
	}
}

func TestCommandLifecycle(t *testing.T) {
	ctx, c, m := testCtx(t), local.New(), command{}
	s := stateService(t)
	steps := []struct {
		name    string
		op      func() (Result, error)
		changed bool
		after   State
	}{
		{"start", func() (Result, error) { return m.Start(ctx, c, s) }, true, Running},
		{"start again", func() (Result, error) { return m.Start(ctx, c, s) }, false, Running},
		{"stop", func() (Result, error) { return m.Stop(ctx, c, s) }, true, Stopped},
		{"stop again", func() (Result, error) { return m.Stop(ctx, c, s) }, false, Stopped},
	}
	for _, st := range steps {
		res, err := st.op()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Changed != st.changed {
			t.Errorf("%s: Changed = %v, want %v", st.name, res.Changed, st.changed)
		}
		if got, err := m.Status(ctx, c, s); err != nil || got != st.after {
			t.Errorf("%s: Status = %v, %v; want %v", st.name, got, err, st.after)
		}
		if st.name == "start" {
			if b, _ := os.ReadFile(filepath.Join(s.Dir, "state")); string(b) != "started with env" {
				t.Errorf("start ran without Dir or Env: state = %q", b)
			}
		}
	}
}

func TestCommandFailures(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(s *Service)
		stop   bool
		errHas string
		isExit bool
	}{
		{"start command fails", func(s *Service) { s.StartCmd = []string{"sh", "-c", "echo no permission >&2; exit 4"} }, false,
			"etcd: start: sh -c 'echo no permission >&2; exit 4': exit status 4: no permission", true},
		{"never running", func(s *Service) { s.StartCmd = []string{"true"}; s.Wait = 200 * time.Millisecond }, false,
			"etcd did not start within 200ms; test -e state exits 1", false},
		{"never stopped", func(s *Service) {
			s.StatusCmd = []string{"true"}
			s.StopCmd = []string{"true"}
			s.Wait = 200 * time.Millisecond
		}, true, "etcd did not stop within 200ms; true exits 0", false},
		{"status cannot run", func(s *Service) { s.StatusCmd = []string{"true"}; s.Dir = filepath.Join(s.Dir, "nope") }, false,
			"etcd: status: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stateService(t)
			tt.edit(&s)
			op := command{}.Start
			if tt.stop {
				op = command{}.Stop
			}
			_, err := op(testCtx(t), local.New(), s)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.errHas)
			}
			var ee *conn.ExitError
			if errors.As(err, &ee) != tt.isExit {
				t.Errorf("wraps an exit error = %v, want %v", !tt.isExit, tt.isExit)
			}
		})
	}
}
