package cli

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"time"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/notify"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/spec"
)

// NotifyVar is the inventory variable that adds receivers to the runbook's
// notify: list, in the same shape: which channel a team watches belongs to
// the environment as much as to the change.
const NotifyVar = "runbook_notify"

// notifyTargets are the receivers of a run: the runbook's notify: entries,
// their URL templates rendered with the first host's vars (as preflight
// sees them), then the inventory's runbook_notify, which every host of the
// plan must have alike. Errors never quote a URL: it may hold a token.
func notifyTargets(p *plan.Plan, run eval.Run, secrets *redact.Set) ([]notify.Target, diag.Diags) {
	var ds diag.Diags
	var out []notify.Target
	add := func(label string, n *spec.Notify, u string) {
		t := notify.Target{Kind: n.Kind, URL: u, Label: label + " " + n.Kind, Timeout: n.Timeout, Retries: n.Retries}
		// The receiver's host names it in messages, unless the URL holds a
		// secret (a -e or vault value), which may be the host itself.
		if pu, err := url.Parse(u); err == nil && secrets.Redact(u) == u {
			t.Label += " " + pu.Host
		}
		out = append(out, t)
	}
	var first *plan.Host
	if len(p.Hosts) > 0 {
		first = p.Hosts[0]
	}
	for i, n := range p.Spec.Notify {
		label := fmt.Sprintf("notify[%d]", i)
		u := n.URL
		if n.URLTemplate != nil {
			scope := &eval.Scope{Vars: plan.MergeVars(p.Spec.Vars, p.ExtraVars), Run: run, Inventory: p.EvalInventory()}
			if first != nil {
				scope.Vars, scope.Host = first.Vars, first.Eval()
			}
			v, err := n.URLTemplate.Render(scope)
			if err != nil {
				ds.Add(n.URLPos, fmt.Sprintf("%s.%s: %s", label, n.Kind, secrets.Redact(err.Error())), "")
				continue
			}
			s, ok := v.(string)
			if !ok {
				ds.Add(n.URLPos, fmt.Sprintf("%s.%s must render a URL, got %T", label, n.Kind, v), "")
				continue
			}
			u = s
		}
		if msg := spec.BadNotifyURL(u); msg != "" {
			ds.Add(n.URLPos, fmt.Sprintf("%s.%s %s once rendered", label, n.Kind, msg), "like https://hooks.example.com/runbook")
			continue
		}
		add(label, n, u)
	}

	var val any
	var from *plan.Host
	for _, h := range p.Hosts {
		v := h.Vars[NotifyVar]
		if from == nil {
			val, from = v, h
			continue
		}
		if !reflect.DeepEqual(v, val) {
			ds.Add(varPos(p, h, NotifyVar), fmt.Sprintf("var %s of host %s differs from host %s's", NotifyVar, h.Name, from.Name),
				"a run notifies one set of receivers: set "+NotifyVar+" once for all the hosts (group_vars/all)")
			return nil, ds
		}
	}
	if val == nil {
		return out, ds
	}
	list, lds := spec.DecodeNotify(val)
	pos := varPos(p, from, NotifyVar)
	for _, d := range lds {
		ds.Add(pos, "var "+NotifyVar+": "+d.Summary, d.Detail)
	}
	for i, n := range list {
		add(fmt.Sprintf("%s[%d]", NotifyVar, i), n, n.URL)
	}
	return out, ds
}

func varPos(p *plan.Plan, h *plan.Host, name string) diag.Pos {
	if h.Inventory != nil {
		if pos, ok := h.Inventory.VarPos(name); ok {
			return pos
		}
	}
	if _, ok := p.ExtraVars[name]; ok {
		return diag.Pos{File: "-e"}
	}
	if pos, ok := p.Spec.VarPos[name]; ok {
		return pos
	}
	return diag.Pos{File: p.File}
}

// notifier is a run's notifications: flush waits for them at the end.
type notifier struct {
	n        *notify.Notifier
	deadline time.Duration
}

// attachNotify attaches the run's notifier to the bus; its delivery
// failures come back into the bus as notify_failed events, and so into the
// journal. The targets were checked when the plan was built.
func (a *app) attachNotify(bus *event.Bus, p *plan.Plan, runID string, resume *journal.State) *notifier {
	run := eval.Run{ID: runID, Resumed: resume != nil}
	var earlier []event.Event
	if resume != nil {
		run.Started, earlier = resume.Started, resume.Events
	}
	targets, _ := notifyTargets(p, run, bus.Secrets())
	nt := &notifier{}
	for _, t := range targets {
		nt.deadline = max(nt.deadline, t.Timeout)
	}
	nt.n = notify.New(targets, notify.Options{
		Secrets: bus.Secrets(),
		Earlier: earlier,
		Failed:  func(e event.Event) { _ = bus.Emit(e) },
	})
	bus.Attach(nt.n)
	return nt
}

// flush waits for the notifications still queued, at most as long as one
// request may take, so that a receiver that hangs delays the end of the run
// by no more than that.
func (nt *notifier) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), nt.deadline)
	defer cancel()
	nt.n.Close(ctx)
}
