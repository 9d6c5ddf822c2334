package swap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/modules"
)

// redacted is res as the journal gives it back when dest holds a secret of
// the run (a -e value): every recorded text with it replaced.
func redacted(t *testing.T, res modules.Result, secret string) modules.Result {
	t.Helper()
	s := &redact.Set{}
	s.Add(secret)
	out := roundTrip(t, res)
	out.Data = s.RedactMap(out.Data)
	if d, _ := out.Data["dest"].(string); !strings.Contains(d, redact.Placeholder) {
		t.Fatalf("dest %q is not redacted", d)
	}
	return out
}

// TestUndoRedactedPaths: after a resume, a swap whose dest holds a -e value
// is undone at its real path, taken from the step's arguments rendered
// again, not at the redacted one the journal shows, where it would find
// nothing and take the swap for undone already.
func TestUndoRedactedPaths(t *testing.T) {
	const secret = "v3.7.3-Zq9"
	t.Run("a file the swap created is removed", func(t *testing.T) {
		w := newWorld(t)
		m := &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, "etcd-"+secret)}
		res, err := m.Run(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Undo(testCtx(t), w.h, redacted(t, res, secret)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(m.Dest); !os.IsNotExist(err) {
			t.Errorf("the file the swap created is still there (%v)", err)
		}
	})
	t.Run("a replaced file is put back", func(t *testing.T) {
		w := newWorld(t)
		m := &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, "etcd-"+secret)}
		w.write(t, m.Dest, oldBin, 0o755)
		before := mustRead(t, m.Dest)
		res, err := m.Run(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Undo(testCtx(t), w.h, redacted(t, res, secret)); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, m.Dest); !equalFile(got, before) {
			t.Errorf("after undo dest = %+v, want %+v", got, before)
		}
	})
	t.Run("a staged file is removed", func(t *testing.T) {
		w := newWorld(t)
		m := &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, "etcd-"+secret), Prepare: true}
		res, err := m.Run(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		stage, _ := res.Data["staged_path"].(string)
		if err := m.Undo(testCtx(t), w.h, redacted(t, res, secret)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(stage); !os.IsNotExist(err) {
			t.Errorf("the staged file %s is still there (%v)", stage, err)
		}
	})
	t.Run("arguments that do not match are refused", func(t *testing.T) {
		w := newWorld(t)
		m := &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, "etcd-"+secret)}
		res, err := m.Run(testCtx(t), w.h)
		if err != nil {
			t.Fatal(err)
		}
		for _, dest := range []string{"other", "etcd-" + redact.Placeholder} {
			other := &Module{Src: "dist/etcd-3.7.3", Dest: filepath.Join(w.bin, dest)}
			err = other.Undo(testCtx(t), w.h, redacted(t, res, secret))
			if err == nil || !strings.Contains(err.Error(), "hides a secret of the run") {
				t.Fatalf("undo with dest %s: %v", dest, err)
			}
		}
		if _, err := os.Lstat(m.Dest); err != nil {
			t.Errorf("the swapped file was touched: %v", err)
		}
	})
}
