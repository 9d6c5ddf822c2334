package cli

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/approval"
)

// asksOnRead is a store on which the run's question lands just before the
// approver's third look for it.
type asksOnRead struct {
	approval.Store
	reads int
	req   approval.Request
}

func (s *asksOnRead) Requests(ctx context.Context, runID string) ([]approval.Request, error) {
	if s.reads++; s.reads == 3 {
		if err := s.Store.Ask(ctx, s.req); err != nil {
			return nil, err
		}
	}
	return s.Store.Requests(ctx, runID)
}

// An approver started beside a run looks for its question often at first,
// whatever approvalPoll says: with a fixed poll of an hour this would not
// end within the test's limit.
func TestFindWaitLooksOftenAtFirst(t *testing.T) {
	defer func(p time.Duration) { approvalPoll = p }(approvalPoll)
	approvalPoll = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := approval.Request{RunID: "20261208T010000Z-abcdef", StepID: "steps[3]", Step: "confirm", Host: "m1", Required: 1,
		Since: time.Now(), Deadline: time.Now().Add(time.Hour)}
	s := &asksOnRead{Store: approval.NewFileStore(filepath.Join(t.TempDir(), approval.DirName)), req: req}
	got, err := findWait(ctx, s, req.RunID, &decideFlags{wait: 2 * time.Hour})
	if err != nil || got.Step != "confirm" || s.reads != 3 {
		t.Errorf("findWait = %+v, %v after %d reads; want the question at the third", got, err, s.reads)
	}
}
