package lineinfile

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/modules/internal/modtest"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialSSHD(t *testing.T) conn.Conn { return modtest.DialSSHD(t, "h1") }

func roundTrip(t *testing.T, res modules.Result) modules.Result {
	t.Helper()
	b, err := json.Marshal(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	out := modules.Result{Changed: res.Changed}
	if err := json.Unmarshal(b, &out.Data); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTwoEditsUndone: two steps edit one file; undone newest first, the
// file is back byte for byte, with its mode, and a file create: true made
// is gone. Over the local connection and a real sshd.
func TestTwoEditsUndone(t *testing.T) {
	for _, tr := range []struct {
		name string
		dial func(t *testing.T) conn.Conn
	}{{"local", func(*testing.T) conn.Conn { return local.New() }}, {"ssh", dialSSHD}} {
		t.Run(tr.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "env")
			orig := "A=1\nDEBUG=1\n"
			if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
				t.Fatal(err)
			}
			h := &modules.Host{Name: "h1", Conn: tr.dial(t), Log: zerolog.Nop(), Diff: true}
			line := "B=2"
			steps := []*Module{
				{Path: p, Regexp: "^DEBUG=", State: "absent"},
				{Path: p, Regexp: "^B=", Line: &line},
				{Path: filepath.Join(dir, "new"), Line: &line, Create: true},
			}
			var done []modules.Result
			for _, m := range steps {
				chk, err := m.Check(testCtx(t), h)
				if err != nil || !chk.Changed || !strings.Contains(chk.Data["diff"].(string), "@@") {
					t.Fatalf("Check = %+v, %v", chk, err)
				}
				res, err := m.Run(testCtx(t), h)
				if err != nil || !res.Changed {
					t.Fatalf("Run = %+v, %v", res, err)
				}
				done = append(done, roundTrip(t, res))
			}
			if b, _ := os.ReadFile(p); string(b) != "A=1\nB=2\n" {
				t.Fatalf("after the edits: %q", b)
			}
			for i := len(steps) - 1; i >= 0; i-- {
				if err := steps[i].Undo(testCtx(t), h, done[i]); err != nil {
					t.Fatalf("undo %d: %v", i, err)
				}
			}
			b, _ := os.ReadFile(p)
			fi, _ := os.Stat(p)
			if string(b) != orig || fi.Mode().Perm() != 0o600 {
				t.Errorf("after undo: %q %v, want %q 0600", b, fi.Mode(), orig)
			}
			if _, err := os.Lstat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
				t.Errorf("the created file is still there (%v)", err)
			}
		})
	}
}
