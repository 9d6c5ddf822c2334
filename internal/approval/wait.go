package approval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/backoff"
)

// ErrTimedOut is Wait's error when the request's deadline passed first.
var ErrTimedOut = errors.New("no decision in time")

// Watch is what Wait tells its caller as it goes.
type Watch struct {
	// Decision is called once per decision, in order, when first seen;
	// counted says whether it counts for the verdict, why when it does not.
	Decision func(d Decision, counted bool, why string)
	// Trouble is called when the store cannot be read; Wait goes on trying.
	Trouble func(err error)
}

// Wait records req in s, then reads its decisions until they approve it,
// one rejects it, req.Deadline passes (ErrTimedOut) or ctx ends (its error).
// It reads them often at first and then every poll at most (see backoff): a
// colleague at the ready, or a script, approves within moments, and the run
// must not add a fixed poll to the time its hosts wait. The record of the
// wait is removed however it ends; decisions stay, so a later wait of the
// same run at the same step (a resume) counts them again. now is the clock
// (time.Now when nil).
func Wait(ctx context.Context, s Store, req Request, poll time.Duration, now func() time.Time, w Watch) (Verdict, error) {
	if now == nil {
		now = time.Now
	}
	if err := s.Ask(ctx, req); err != nil {
		return Verdict{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		_ = s.Done(dctx, req)
	}()
	seen := map[string]bool{}
	var lastTrouble string
	b := backoff.Capped(poll)
	for {
		ds, err := s.Decisions(ctx, req.RunID, req.Key())
		if err != nil && ctx.Err() == nil {
			if err.Error() != lastTrouble && w.Trouble != nil {
				w.Trouble(err)
			}
			lastTrouble = err.Error()
		}
		if err == nil {
			lastTrouble = ""
			v := Judge(req, ds)
			counted := map[string]bool{}
			for _, d := range v.Approvals {
				counted[d.ID] = true
			}
			if v.Rejection != nil {
				counted[v.Rejection.ID] = true
			}
			for _, d := range ds {
				if seen[d.ID] {
					continue
				}
				seen[d.ID] = true
				if w.Decision != nil {
					w.Decision(d, counted[d.ID], whyNot(req, d, counted[d.ID], v))
				}
			}
			if v.Approved || v.Rejection != nil {
				return v, nil
			}
		}
		if !req.Deadline.IsZero() && !now().Before(req.Deadline) {
			return Verdict{}, fmt.Errorf("%w: %d of %d approvals after %s", ErrTimedOut, len(Judge(req, ds).Approvals), req.Required, req.Deadline.Sub(req.Since).Round(time.Second))
		}
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return Verdict{}, ctx.Err()
		case <-t.C:
		}
	}
}

// whyNot says why decision d does not count.
func whyNot(req Request, d Decision, counted bool, v Verdict) string {
	if counted {
		return ""
	}
	if err := Refusal(req, d.User); err != nil {
		return err.Error()
	}
	for _, a := range v.Approvals {
		if a.User == d.User {
			return Clean(d.User) + " approved already; each person counts once"
		}
	}
	return ""
}
