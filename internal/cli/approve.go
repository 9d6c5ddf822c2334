package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/approval"
	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/modules"
)

func init() { commands = append(commands, newApproveCmd, newRejectCmd) }

// Clock is the clock of change windows and approval deadlines; tests of the
// command line set a fixed one.
var Clock = time.Now

// approvalPoll is the longest wait between two reads of the approvals: a
// waiting run's of its decisions, an approver's for the run's question.
// Both read often at first (see backoff).
var approvalPoll = 500 * time.Millisecond

// openApprovalStore opens the approvals' store beside the run lock's: the
// folder approvals/ next to the lock folder (state/locks, or lock.dir), or
// the lock's etcd cluster under its prefix.
func openApprovalStore(lk *spec.Lock, runbookFile, stateDir string, sh *sharedState) (approval.Store, error) {
	if sh != nil && (lk == nil || lk.Etcd == nil && lk.Dir == "") {
		// Approvals go where the run lock goes: the shared store's cluster.
		cfg, err := sh.config()
		if err != nil {
			return nil, err
		}
		return approval.OpenEtcd(approval.EtcdConfig{Endpoints: cfg.Endpoints, TLS: cfg.TLS, DialTimeout: cfg.DialTimeout,
			Prefix: cfg.Prefix, Username: cfg.Username, Password: cfg.Password})
	}
	switch {
	case lk != nil && lk.Dir != "":
		return approval.NewFileStore(filepath.Join(filepath.Dir(filepath.Clean(lk.Dir)), approval.DirName)), nil
	case lk == nil || lk.Etcd == nil:
		return approval.NewFileStore(filepath.Join(stateDir, approval.DirName)), nil
	}
	e := lk.Etcd
	cfg, err := etcdctl.Resolve(etcdctl.Settings{Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		DialTimeout: e.DialTimeout}, etcdctl.Env{Dir: runbookDir(runbookFile)})
	if err != nil {
		return nil, fmt.Errorf("lock.etcd: %w", err)
	}
	return approval.OpenEtcd(approval.EtcdConfig{Endpoints: cfg.Endpoints, TLS: cfg.TLS, DialTimeout: cfg.DialTimeout, Prefix: e.Prefix})
}

// approvals is how a run waits for approvals: it records the wait in the
// store, journals it with the command that answers it, and journals every
// decision it sees.
type approvals struct {
	store     approval.Store
	bus       *event.Bus
	runID     string
	runbook   string
	startedBy string
	// where are the flags that find the store, for the command it shows.
	where string
}

// newApprovals opens the store of the run's lock for its waits; nil for a
// --check run, which never waits. file and inv are the runbook and the
// inventory as the operator named them, for the command it shows.
func newApprovals(p *plan.Plan, f *runFlags, file, inv string, bus *event.Bus, runID, startedBy string) (*approvals, error) {
	if f.check {
		return nil, nil
	}
	lk, ds := effectiveLock(p)
	if ds.HasErrors() {
		return nil, withCode(exitcode.Invalid, ds.Err())
	}
	store, err := openApprovalStore(lk, file, f.stateDir, f.shared)
	if err != nil {
		return nil, withCode(exitcode.Stopped, fmt.Errorf("approvals: %w; nothing was touched", err))
	}
	where := " --state-dir " + shellQuote(absPath(f.stateDir))
	switch {
	case lk != nil && (lk.Etcd != nil || lk.Dir != ""):
		where = " --runbook " + shellQuote(absPath(file)) + " -i " + shellQuote(inv)
	case f.shared != nil:
		where = " --state " + shellQuote(f.shared.String())
	}
	return &approvals{store: store, bus: bus, runID: runID, runbook: p.Runbook, startedBy: startedBy, where: where}, nil
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// decisionData is what the journal keeps of a decision.
func decisionData(d approval.Decision) map[string]any {
	return map[string]any{"decision": d.Verb(), "user": d.User, "os_user": d.OSUser, "controller": d.Controller,
		"time": d.Time.UTC().Format(time.RFC3339), "reason": d.Reason}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (w *approvals) await(ctx context.Context, req modules.ApprovalRequest) (modules.ApprovalOutcome, error) {
	since := Clock().UTC().Truncate(time.Second)
	r := approval.Request{RunID: w.runID, Runbook: w.runbook, StepID: req.StepID, Step: req.Step, Host: req.Host,
		Prompt: req.Prompt, Required: req.Required, Self: req.Self, StartedBy: w.startedBy,
		Since: since, Deadline: since.Add(req.Timeout), PID: os.Getpid()}
	r.Controller, _ = os.Hostname()
	cmd := fmt.Sprintf("runbook approve %s --step %s%s", w.runID, shellQuote(req.Step), w.where)
	who := "someone other than " + w.startedBy
	if req.Self {
		who = "anyone, " + w.startedBy + " included (from another shell)"
	}
	base := event.Event{Phase: event.Steps, Host: req.Host, Step: req.Step}
	wait := base
	wait.Kind = event.ApprovalWait
	wait.Error = fmt.Sprintf("waiting for %d %s by %s until %s: %s (or runbook reject)", req.Required,
		plural(req.Required, "approval", "approvals"), who, r.Deadline.Format("2006-01-02 15:04 MST"), cmd)
	wait.Data = map[string]any{"required": req.Required, "self": req.Self, "timeout": req.Timeout.String(),
		"started_by": w.startedBy, "deadline": r.Deadline.Format(time.RFC3339), "approve_command": cmd,
		"reject_command": strings.Replace(cmd, "runbook approve", "runbook reject", 1) + " --reason '...'", "store": w.store.String()}
	_ = w.bus.Emit(wait)

	v, err := approval.Wait(ctx, w.store, r, approvalPoll, Clock, approval.Watch{
		Decision: func(d approval.Decision, counted bool, why string) {
			e := base
			e.Kind = event.Approval
			e.Status = event.OK
			if !d.Approve {
				e.Status = event.Failed
			}
			e.Data = decisionData(d)
			e.Data["counted"] = counted
			// data.reason is an engine field of every step event.
			delete(e.Data, "reason")
			e.Reason = d.Reason
			if why != "" {
				e.Error = why
			}
			_ = w.bus.Emit(e)
		},
		Trouble: func(err error) {
			e := base
			e.Kind = event.Approval
			e.Error = "cannot read the approvals, trying again: " + err.Error()
			_ = w.bus.Emit(e)
		},
	})
	switch {
	case errors.Is(err, approval.ErrTimedOut):
		e := base
		e.Kind, e.Status, e.Error = event.Approval, event.Failed, err.Error()
		e.Data = map[string]any{"decision": "timeout"}
		_ = w.bus.Emit(e)
		return modules.ApprovalOutcome{}, fmt.Errorf("%w: %v", modules.ErrRejected, err)
	case err != nil:
		return modules.ApprovalOutcome{}, err
	case v.Rejection != nil:
		d := v.Rejection
		why := ""
		if d.Reason != "" {
			why = ": " + approval.Clean(d.Reason)
		}
		return modules.ApprovalOutcome{Data: map[string]any{"rejected_by": d.User}},
			fmt.Errorf("%w by %s on %s%s", modules.ErrRejected, approval.Clean(d.User), approval.Clean(d.Controller), why)
	}
	var given []any
	for _, d := range v.Approvals {
		given = append(given, decisionData(d))
	}
	return modules.ApprovalOutcome{Approvers: approval.Approvers(v.Approvals), Data: map[string]any{"approvals": given}}, nil
}

// decideFlags are the flags of approve and reject.
type decideFlags struct {
	step, host, reason, user string
	stateDir, file, inv      string
	wait                     time.Duration
	state                    stateFlag
}

func newApproveCmd(a *app) *cobra.Command { return newDecideCmd(a, true) }
func newRejectCmd(a *app) *cobra.Command  { return newDecideCmd(a, false) }

func newDecideCmd(a *app, approve bool) *cobra.Command {
	var f decideFlags
	verb, Verb := "approve", "Approve"
	long := `Approve the step a run waits at (a pause with approve:), as yourself: $USER,
or --user. The run goes on once the step's required number of distinct users
approved; by default the user who started the run does not count (approve:
self: true lets them, from another shell). --yes never approves.

The approval goes to the store of the run's lock: the state folder's files
(--state-dir, beside locks/), or with --runbook (and -i) the store its lock:
key names (lock.dir, or an etcd cluster: then from any machine that reaches
it). The waiting run journals who approved, from where, when and why; so
does the store. Without --step, the run's only wait; --host picks one of
several hosts waiting at the step.`
	example := `  runbook approve 20261207T031914Z-33015f --step 'confirm the last member' --reason 'dashboards green'
  runbook approve 20261207T031914Z-33015f --runbook runbooks/upgrade-etcd.yml -i prod`
	if !approve {
		verb, Verb = "reject", "Reject"
		long = `Reject the step a run waits at (a pause with approve:): the wait ends, the
step fails as a rejection, the run stops and rolls back what the runbook says
for the hosts it left mid-way, and exits 3. Anyone may reject, the user who
started the run included. The rejection is journaled with who, where, when
and the --reason, and a resume of the run stops at that step again.

The store is found as for 'runbook approve'.`
		example = `  runbook reject 20261207T031914Z-33015f --reason 'error budget spent; not tonight'`
	}
	cmd := &cobra.Command{
		Use:     verb + " RUN_ID [--step NAME] [--reason TEXT]",
		Short:   Verb + " a step a run waits at",
		Long:    long,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.decide(args[0], approve, &f)
		},
	}
	cmd.Flags().StringVar(&f.step, "step", "", "the step's name (or id, as steps[3].block[1]); needed when the run waits at several")
	cmd.Flags().StringVar(&f.host, "host", "", "the host, when several wait at the step")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why: recorded with the decision")
	cmd.Flags().StringVar(&f.user, "user", "", "who decides (default $USER)")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", ".runbook", "the state folder of the run (its approvals/ beside locks/)")
	f.state.register(cmd.Flags())
	cmd.Flags().StringVar(&f.file, "runbook", "", "the runbook whose lock: key names the store (lock.dir, or an etcd cluster)")
	cmd.Flags().StringVarP(&f.inv, "inventory", "i", "", "with --runbook: the inventory, when its runbook_lock var names the store")
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "wait this long for the run to reach a step that needs approval (default: it must wait now)")
	return cmd
}

// decide records one decision on the wait of run runID that f names.
func (a *app) decide(runID string, approve bool, f *decideFlags) error {
	user := strings.TrimSpace(f.user)
	if user == "" {
		user = approval.Identity()
	}
	if strings.TrimSpace(runID) == "" || strings.ContainsAny(runID, "/\\") || strings.HasPrefix(runID, ".") {
		return invalidf("%q is not a run id; runbook runs lists them", runID)
	}
	sh, err := f.state.get()
	if err != nil {
		return err
	}
	lk, p, err := a.lockFor(f.file, f.inv)
	if err != nil {
		return err
	}
	if p != nil {
		sh = runState(p, sh)
	}
	store, err := openApprovalStore(lk, f.file, f.stateDir, sh)
	if err != nil {
		return withCode(exitcode.Invalid, err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout+f.wait)
	defer cancel()
	req, err := findWait(ctx, store, runID, f)
	if err != nil {
		return err
	}
	d := approval.Decision{RunID: runID, StepID: req.StepID, Host: req.Host, Approve: approve, User: user,
		OSUser: approval.OSUser(), Time: Clock().UTC(), Reason: strings.TrimSpace(f.reason)}
	d.Controller, _ = os.Hostname()
	if approve {
		if err := approval.Refusal(req, user); err != nil {
			return withCode(exitcode.Stopped, fmt.Errorf("%v; nothing was recorded", err))
		}
		ds, err := store.Decisions(ctx, runID, req.Key())
		if err != nil {
			return withCode(exitcode.Stopped, err)
		}
		for _, p := range approval.Judge(req, ds).Approvals {
			if p.User == user {
				return withCode(exitcode.Stopped, fmt.Errorf("%s approved step %q of run %s on %s already (at %s); each person counts once; nothing was recorded",
					approval.Clean(user), approval.Clean(req.Step), runID, approval.Clean(req.Host), p.Time.UTC().Format(time.DateTime)))
			}
		}
	}
	if err := store.Decide(ctx, d); err != nil {
		return withCode(exitcode.Stopped, err)
	}
	fmt.Fprintf(a.stdout, "%s step %q of run %s on %s as %s", d.Verb(), approval.Clean(req.Step), runID, approval.Clean(req.Host), approval.Clean(user))
	if d.Reason != "" {
		fmt.Fprintf(a.stdout, ", reason %q", approval.Clean(d.Reason))
	}
	fmt.Fprintf(a.stdout, " (%s)\n", store)
	if approve && req.Required > 1 {
		ds, _ := store.Decisions(ctx, runID, req.Key())
		fmt.Fprintf(a.stdout, "%d of %d approvals given\n", len(approval.Judge(req, ds).Approvals), req.Required)
	}
	return nil
}

// findWait is the wait f names among run runID's, waiting up to f.wait for
// one to appear. None, or several that f does not tell apart, is refused.
func findWait(ctx context.Context, store approval.Store, runID string, f *decideFlags) (approval.Request, error) {
	deadline := time.Now().Add(f.wait)
	// As the run reads its decisions, but often for longer: an approver
	// started beside a run waits for its question.
	b := backoff.Capped(approvalPoll)
	b.SlowAfter = time.Minute
	for {
		reqs, err := store.Requests(ctx, runID)
		if err != nil {
			return approval.Request{}, withCode(exitcode.Stopped, err)
		}
		var match []approval.Request
		for _, r := range reqs {
			if (f.step == "" || r.Step == f.step || r.StepID == f.step) && (f.host == "" || r.Host == f.host) {
				match = append(match, r)
			}
		}
		switch {
		case len(match) == 1:
			return match[0], nil
		case len(match) > 1:
			var b strings.Builder
			for _, r := range match {
				fmt.Fprintf(&b, "\n  --step %s --host %s", shellQuote(approval.Clean(r.Step)), shellQuote(approval.Clean(r.Host)))
			}
			return approval.Request{}, invalidf("run %s waits at %d steps; name one:%s", runID, len(match), b.String())
		case time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return approval.Request{}, withCode(exitcode.Stopped, ctx.Err())
			case <-time.After(b.Next()):
			}
			continue
		}
		what := "an approval"
		if f.step != "" {
			what = "approval of step " + fmt.Sprintf("%q", f.step)
		}
		if f.host != "" {
			what += " on " + f.host
		}
		var others []string
		for _, r := range reqs {
			others = append(others, fmt.Sprintf("%q on %s", approval.Clean(r.Step), approval.Clean(r.Host)))
		}
		msg := fmt.Sprintf("run %s does not wait for %s now (%s)", runID, what, store)
		if len(others) > 0 {
			msg += "; it waits at " + strings.Join(others, ", ")
		}
		return approval.Request{}, withCode(exitcode.Stopped, errors.New(msg+"; nothing was recorded"))
	}
}
