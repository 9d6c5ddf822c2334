package runner

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/plan"
)

// Bounds of the handling of a leftover command (see leftover).
const (
	leftoverPoll  = 250 * time.Millisecond
	leftoverGrace = 5 * time.Second // between SIGTERM and SIGKILL, and after SIGKILL
	leftoverCheck = 30 * time.Second
)

// watchProcs makes every command started under ctx journal its process
// group as soon as it started (a step_process event). A failure to record it
// is the journal's failure, which stops the run as usual; the command runs
// already and is waited for.
func (h *hostRun) watchProcs(ctx context.Context, base event.Event, blockRollback string, target *plan.Host) context.Context {
	return conn.WithProcWatch(ctx, func(p conn.Proc) {
		e := base
		e.Kind = event.StepProcess
		// Numbers and a host name only: nothing a no_log step hides.
		e.NoLog = false
		e.Status, e.Error, e.Result, e.Duration = "", "", nil, 0
		on := target.Name
		if p.On != "" {
			on = p.On
		}
		e.Engine = event.Engine{LoopIndex: base.LoopIndex, PGID: p.PGID, On: on, Start: p.Start, Boot: p.Boot, Become: p.Become,
			BlockRollback: blockRollback}
		if p.Become {
			e.BecomeUser = p.BecomeUser
		}
		e.Data = nil
		_ = h.r.emit(e)
	})
}

// leftovers deals with the commands that the stopped run's step on this host
// left running, before anything of the host runs again, so that a step never
// runs twice at once: the old command is waited for while the step's timeout
// (counted from when it started) allows, and killed after that, or at once
// when the step has no timeout. What was done and why goes to the journal
// and the output. A failure means it could not be made sure that the old
// command ended: the host must not go on, and is left as unreachable is,
// since what the command did is unknown.
func (h *hostRun) leftovers(ctx context.Context) *failure {
	for _, lp := range h.progress.Leftovers {
		if err := h.leftover(ctx, lp); err != nil {
			kind := failUnreachable
			if ctx.Err() != nil {
				kind = failInterrupted
			}
			f := &failure{kind: kind, name: lp.Step, index: lp.Index, err: h.r.secrets.Error(err)}
			h.noteFailure(f)
			return f
		}
	}
	return nil
}

func (h *hostRun) leftover(ctx context.Context, lp journal.Process) error {
	r := h.r
	target, err := h.procTarget(lp.On)
	if err != nil {
		return err
	}
	c, release, err := r.pool.acquire(ctx, target)
	if err != nil {
		return fmt.Errorf("cannot check whether the command the stopped run left on %s (process group %d) still runs: %w", lp.On, lp.PGID, err)
	}
	defer release()
	where := fmt.Sprintf("process group %d on %s", lp.PGID, lp.On)
	check := func(sig string) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, leftoverCheck)
		defer cancel()
		out, err := c.Run(cctx, conn.Cmd{
			Argv: []string{"/bin/sh", "-c", conn.ProcCheckScript, "sh", strconv.Itoa(lp.PGID),
				strconv.FormatUint(lp.Start, 10), lp.Boot, sig},
			Become: lp.Become, BecomeUser: lp.BecomeUser,
		})
		if err != nil {
			return false, fmt.Errorf("checking %s, which the stopped run started: %w", where, err)
		}
		switch strings.TrimSpace(string(out.Stdout)) {
		case "running":
			return true, nil
		case "gone":
			return false, nil
		}
		return false, fmt.Errorf("checking %s: unexpected answer %q", where, strings.TrimSpace(string(out.Stdout)))
	}
	// waitGone polls until the group is gone or d passed.
	waitGone := func(d time.Duration) (bool, error) {
		deadline := time.Now().Add(d)
		for {
			running, err := check("0")
			if err != nil || !running {
				return !running, err
			}
			if !time.Now().Before(deadline) {
				return false, nil
			}
			t := time.NewTimer(min(leftoverPoll, time.Until(deadline)))
			select {
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			case <-t.C:
			}
		}
	}
	say := func(action, msg string) {
		r.log.Warn().Str("host", h.host.Name).Int("pgid", lp.PGID).Str("action", action).Msg(msg)
		_ = r.emit(event.Event{Kind: event.Leftover, Phase: lp.Phase, Batch: h.batch, Host: h.host.Name, Step: lp.Step,
			StepIndex: lp.Index, Undo: lp.Undo, Error: msg,
			Engine: event.Engine{Action: action, PGID: lp.PGID, On: lp.On}})
	}

	running, err := check("0")
	if err != nil {
		return err
	}
	if !running {
		return nil
	}
	started := time.Since(lp.At).Round(time.Second)
	timeout := h.stepTimeout(lp)
	reason := "the step has no timeout, so there is no bound to wait for it"
	if timeout > 0 {
		left := time.Until(lp.At.Add(timeout))
		if left > 0 {
			say("wait", fmt.Sprintf("the command the stopped run started %s ago still runs (%s): waiting up to %s for it to end, within the step's timeout of %s, before the step runs again",
				started, where, left.Round(time.Second), timeout))
			gone, err := waitGone(left)
			if err != nil {
				return err
			}
			if gone {
				say("waited", fmt.Sprintf("the command the stopped run left (%s) ended; the step runs again", where))
				return nil
			}
		}
		reason = fmt.Sprintf("it outlived the step's timeout of %s", timeout)
	}
	say("kill", fmt.Sprintf("killing the command the stopped run started %s ago (%s): %s; the step then runs again", started, where, reason))
	for _, sig := range []string{"TERM", "KILL"} {
		if _, err := check(sig); err != nil {
			return err
		}
		gone, err := waitGone(leftoverGrace)
		if err != nil {
			return err
		}
		if gone {
			say("killed", fmt.Sprintf("the command the stopped run left (%s) ended on SIG%s", where, sig))
			return nil
		}
	}
	return fmt.Errorf("the command the stopped run left (%s) still runs after SIGKILL; not running the step again beside it", where)
}

// stepTimeout is the timeout of the step a leftover command belongs to, 0
// when it has none or is not a step of the steps phase.
func (h *hostRun) stepTimeout(lp journal.Process) time.Duration {
	if lp.Phase != event.Steps || lp.Undo || lp.Index < 0 || lp.Index >= len(h.r.index.byIndex) {
		return 0
	}
	if s := h.r.index.byIndex[lp.Index]; s != nil {
		return s.Timeout.Std()
	}
	return 0
}

// procTarget is the connection a journaled command ran over.
func (h *hostRun) procTarget(key string) (*plan.Host, error) {
	switch key {
	case h.host.Name:
		return h.host, nil
	case plan.Controller:
		return controllerTarget(), nil
	}
	if d, err := h.r.p.Delegate(key); err == nil {
		return d, nil
	}
	return nil, fmt.Errorf("the stopped run left a command on %s, which is no longer in the inventory; check it by hand", key)
}
