package approval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func req(required int, self bool) Request {
	return Request{RunID: "20261207T030000Z-abcdef", StepID: "steps[3].block[1]", Step: "confirm", Host: "m3",
		Required: required, Self: self, StartedBy: "alice", Since: t0, Deadline: t0.Add(time.Hour)}
}

func dec(user string, approve bool, min int) Decision {
	r := req(1, false)
	return Decision{RunID: r.RunID, StepID: r.StepID, Host: r.Host, Approve: approve, User: user,
		Time: t0.Add(time.Duration(min) * time.Minute), ID: fmt.Sprintf("%02d-%s", min, user)}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name      string
		req       Request
		ds        []Decision
		approved  bool
		rejected  string
		approvers []string
	}{
		{"nothing yet", req(1, false), nil, false, "", nil},
		{"another user approves", req(1, false), []Decision{dec("bob", true, 1)}, true, "", []string{"bob"}},
		{"the starter may not approve", req(1, false), []Decision{dec("alice", true, 1)}, false, "", nil},
		{"the starter may with self", req(1, true), []Decision{dec("alice", true, 1)}, true, "", []string{"alice"}},
		{"two needed, one user twice", req(2, false), []Decision{dec("bob", true, 1), dec("bob", true, 2)}, false, "", []string{"bob"}},
		{"two needed, two users", req(2, false), []Decision{dec("bob", true, 1), dec("carol", true, 2)}, true, "", []string{"bob", "carol"}},
		{"two needed, starter does not count", req(2, false), []Decision{dec("alice", true, 1), dec("bob", true, 2)}, false, "", []string{"bob"}},
		{"a rejection ends it", req(2, false), []Decision{dec("bob", true, 1), dec("carol", false, 2), dec("dave", true, 3)}, false, "carol", []string{"bob"}},
		{"the starter may reject", req(1, false), []Decision{dec("alice", false, 1)}, false, "alice", nil},
		{"approved before a rejection", req(1, false), []Decision{dec("bob", true, 1), dec("carol", false, 2)}, true, "", []string{"bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.req, tt.ds)
			rej := ""
			if v.Rejection != nil {
				rej = v.Rejection.User
			}
			if v.Approved != tt.approved || rej != tt.rejected || strings.Join(Approvers(v.Approvals), ",") != strings.Join(tt.approvers, ",") {
				t.Errorf("Judge = approved %v, rejected by %q, approvers %v; want %v, %q, %v", v.Approved, rej, Approvers(v.Approvals), tt.approved, tt.rejected, tt.approvers)
			}
		})
	}
}

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(filepath.Join(t.TempDir(), "state", DirName))
	r := req(2, false)
	if got, err := s.Requests(ctx, r.RunID); err != nil || len(got) != 0 {
		t.Fatalf("Requests of an empty store = %v, %v", got, err)
	}
	if err := s.Ask(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Prompt = "again"
	if err := s.Ask(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Requests(ctx, r.RunID)
	if err != nil || len(got) != 1 || got[0].Prompt != "again" || got[0].Key() != r.Key() {
		t.Fatalf("Requests = %+v, %v; want the one wait, asked again", got, err)
	}
	// Many people at once: every decision is kept, none overwritten.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Decide(ctx, dec(fmt.Sprintf("user%02d", i), true, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ds, err := s.Decisions(ctx, r.RunID, r.Key())
	if err != nil || len(ds) != 20 {
		t.Fatalf("Decisions = %d, %v; want 20", len(ds), err)
	}
	if other, _ := s.Decisions(ctx, r.RunID, "steps[0]@m1"); len(other) != 0 {
		t.Errorf("decisions of another wait: %v", other)
	}
	if err := s.Done(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Requests(ctx, r.RunID); len(got) != 0 {
		t.Errorf("Requests after Done = %v", got)
	}
	if err := s.Decide(ctx, Decision{RunID: "../x", User: "bob"}); err == nil {
		t.Error("a run id that is a path was accepted")
	}
}

func TestFileStoreRefusesLinks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	elsewhere := filepath.Join(dir, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, DirName)); err != nil {
		t.Fatal(err)
	}
	s := NewFileStore(filepath.Join(dir, DirName))
	if err := s.Ask(ctx, req(1, false)); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Ask through a linked folder = %v, want a refusal", err)
	}
	// A run folder that is a link is refused too.
	s = NewFileStore(filepath.Join(dir, "real"))
	if err := os.MkdirAll(filepath.Join(dir, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "real", req(1, false).RunID)); err != nil {
		t.Fatal(err)
	}
	if err := s.Decide(ctx, dec("bob", true, 1)); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Decide through a linked run folder = %v, want a refusal", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("files were written through the link: %v", entries)
	}
}

func TestWait(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(filepath.Join(t.TempDir(), DirName))
	r := req(2, false)
	for _, d := range []Decision{dec("alice", true, 1), dec("bob", true, 2), dec("bob", true, 3), dec("carol", true, 4)} {
		if err := s.Decide(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	v, err := Wait(ctx, s, r, time.Millisecond, func() time.Time { return t0 }, Watch{Decision: func(d Decision, counted bool, why string) {
		lines = append(lines, fmt.Sprintf("%s %v %s", d.User, counted, why))
	}})
	if err != nil || !v.Approved || strings.Join(Approvers(v.Approvals), ",") != "bob,carol" {
		t.Fatalf("Wait = %+v, %v", v, err)
	}
	want := []string{
		"alice false not allowed to approve: alice started run 20261207T030000Z-abcdef, and step \"confirm\" needs someone else's approval (approve: self: false)",
		"bob true ", "bob false bob approved already; each person counts once", "carol true "}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("seen:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got, _ := s.Requests(ctx, r.RunID); len(got) != 0 {
		t.Errorf("the wait is still recorded after it ended: %v", got)
	}

	// The deadline passed: a timeout, whatever the real clock says.
	r2 := r
	r2.StepID = "steps[9]"
	_, err = Wait(ctx, s, r2, time.Millisecond, func() time.Time { return r2.Deadline }, Watch{})
	if !errors.Is(err, ErrTimedOut) {
		t.Errorf("Wait past the deadline = %v, want ErrTimedOut", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Wait(cctx, s, r2, time.Millisecond, func() time.Time { return t0 }, Watch{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context = %v", err)
	}
}

// decidesOnRead is a store on which a decision lands just before the third
// read of the decisions, as when a colleague approves moments after the
// run asked.
type decidesOnRead struct {
	Store
	reads int
	d     Decision
}

func (s *decidesOnRead) Decisions(ctx context.Context, runID, key string) ([]Decision, error) {
	if s.reads++; s.reads == 3 {
		if err := s.Store.Decide(ctx, s.d); err != nil {
			return nil, err
		}
	}
	return s.Store.Decisions(ctx, runID, key)
}

// The reads come quickly at first, whatever poll says: with a fixed poll
// of an hour this wait would never end within the test's limit.
func TestWaitReadsOftenAtFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &decidesOnRead{Store: NewFileStore(filepath.Join(t.TempDir(), DirName)), d: dec("bob", true, 1)}
	v, err := Wait(ctx, s, req(1, false), time.Hour, func() time.Time { return t0 }, Watch{})
	if err != nil || !v.Approved || s.reads != 3 {
		t.Errorf("Wait = %+v, %v after %d reads; want approved at the third", v, err, s.reads)
	}
}
