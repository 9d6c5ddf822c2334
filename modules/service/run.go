package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/svcmgr"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

// readyInterval is the longest time between two tries of the readiness
// probe; the first tries come much sooner.
const readyInterval = 500 * time.Millisecond

// readyTry bounds one try of the readiness probe.
const readyTry = 5 * time.Second

// placeholder stands for a command the manager's Validate requires but the
// action never runs (start_cmd to stop a pidfile service, stop_cmd to start a
// command service): svcmgr.Manager validates a whole definition, and a stop
// step need not say how to start. Should it ever run, it fails with a name
// that says what happened.
var placeholder = []string{"runbook-unused-command-not-given"}

// unit is a service as one host runs it: the step's arguments over the
// host's services entry, with the manager that drives it.
type unit struct {
	name    string // the manager's name
	mgr     svcmgr.Manager
	svc     svcmgr.Service
	ready   *Ready
	wait    time.Duration
	context string // where the definition came from, for messages
	note    string // why kill_when_unlocked does not apply here, if it does not
}

// resolve merges the host's services entry under the step's arguments,
// picks the manager, and checks the result for act: arguments that come
// from the host are only checked here.
func (m *Module) resolve(h *modules.Host, act action) (*unit, error) {
	merged := *m
	merged.action = act
	what := fmt.Sprintf("%s %s", act, m.Service)
	var sources []string
	entry, err := hostEntry(h, m.Service)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if entry != nil {
		sources = append(sources, "host var services."+m.Service)
		if act == stop {
			// The entry says how to start too; its readiness probe is not
			// for a stop.
			entry.Ready = nil
		}
		mergeUnder(&merged.Definition, entry)
	}
	if merged.Manager == "" {
		merged.Manager = "systemd"
		if v, ok := h.Vars["service_manager"]; ok && v != nil {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: host var service_manager must name a manager (%s), got %s", what, strings.Join(Managers, ", "), kindOf(v))
			}
			merged.Manager = s
			sources = append(sources, "host var service_manager")
		}
	}
	if len(sources) > 0 {
		what += " (with " + strings.Join(sources, " and ") + ")"
	}
	// A manager from the host that cannot honour kill_when_unlocked (a step
	// naming one was refused when the runbook was loaded) stops as without
	// it and says why: one runbook then serves hosts run either way, and a
	// stop, inside a rolling change, does not fail over a shortcut.
	note := ""
	if merged.KillWhenUnlocked != nil && act != start && m.Manager == "" {
		if why := svcmgr.NoKillWhenUnlocked(merged.Manager); why != "" {
			note = "it " + why + "; stopped as without it"
			merged.KillWhenUnlocked = nil
		}
	}
	if err := merged.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	d := merged.Defaults()
	u := &unit{name: d.Manager, ready: d.Ready, wait: d.Wait.Std(), context: what, note: note}
	u.svc = svcmgr.Service{Name: d.Service, Wait: d.Wait.Std(), Become: h.Become, BecomeUser: h.BecomeUser}
	if d.KillWhenUnlocked != nil && act != start {
		u.svc.KillWhenUnlocked = *d.KillWhenUnlocked
	}
	switch d.Manager {
	case "pidfile":
		u.svc.Pidfile = d.Pidfile
		u.svc.StartCmd = orPlaceholder(d.StartCmd)
		u.svc.Signal = d.Signal
		u.svc.KillAfter = d.KillAfter.Std()
		u.svc.LogFile = d.LogFile
		if d.Ready != nil && act != stop {
			// The process serving ends the manager's watch over its
			// start, rather than a fixed settle time.
			_, u.svc.Ready = u.readyProbe(h, u.wait)
		}
	case "command":
		u.svc.StartCmd = orPlaceholder(d.StartCmd)
		u.svc.StopCmd = orPlaceholder(d.StopCmd)
		u.svc.StatusCmd = d.StatusCmd
	}
	if u.mgr, err = svcmgr.Get(d.Manager); err != nil {
		return nil, fmt.Errorf("%s: manager: %w", what, err)
	}
	if err := u.mgr.Validate(u.svc); err != nil {
		return nil, fmt.Errorf("%s: %w", what, managerError(err))
	}
	return u, nil
}

func orPlaceholder(argv arg.Argv) []string {
	if len(argv) == 0 {
		return placeholder
	}
	return argv
}

// keys maps svcmgr.Service fields to the arguments that set them.
var keys = map[string]string{
	"Name": "service", "Pidfile": "pidfile", "StartCmd": "start_cmd", "StopCmd": "stop_cmd",
	"StatusCmd": "status_cmd", "Signal": "signal", "KillAfter": "kill_after", "Wait": "wait", "LogFile": "log_file",
	"KillWhenUnlocked": "kill_when_unlocked",
}

// managerError names the arguments in a manager's Validate error as a
// runbook writes them.
func managerError(err error) error {
	var msgs []string
	for _, e := range unjoin(err) {
		var fe *svcmgr.FieldError
		if errors.As(e, &fe) {
			if k, ok := keys[fe.Field]; ok {
				msgs = append(msgs, k+": "+fe.Msg)
				continue
			}
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// hostEntry decodes the host var services.<name>, strictly, as a step's
// arguments are decoded: an unknown or misspelt key is an error, not a
// setting silently ignored. It returns nil when the host has no entry.
func hostEntry(h *modules.Host, name string) (*Definition, error) {
	raw, ok := h.Vars["services"]
	if !ok || raw == nil {
		return nil, nil
	}
	services, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("host var services must be a map of service names to their definitions, like {etcd: {manager: pidfile, ...}}; got %s", kindOf(raw))
	}
	v, ok := services[name]
	if !ok || v == nil {
		return nil, nil
	}
	var node yaml.Node
	if err := node.Encode(v); err != nil {
		return nil, fmt.Errorf("host var services.%s: %w", name, err)
	}
	if node.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("host var services.%s must be a map of keys such as manager, pidfile and start_cmd; got %s", name, kindOf(v))
	}
	var def Definition
	var ds diag.Diags
	where := "host var services." + name
	d := &arg.Decoder{Context: where}
	d.Decode(&node, &def, &ds)
	if ds.HasErrors() {
		// The values have no position in a file (the inventory was merged),
		// so every message must name the var itself.
		var msgs []string
		for _, e := range ds.Errors() {
			msg := e.Message()
			if !strings.Contains(msg, where) {
				msg = where + ": " + msg
			}
			msgs = append(msgs, msg)
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return &def, nil
}

// kindOf names the kind of a var's value for messages.
func kindOf(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	}
	return fmt.Sprintf("%T %v", v, v)
}

// mergeUnder fills every argument the step left unset from the entry: the
// step's own arguments win. Reflection keeps a field added to Definition
// from being forgotten here.
func mergeUnder(step, entry *Definition) {
	sv, ev := reflect.ValueOf(step).Elem(), reflect.ValueOf(entry).Elem()
	for i := range sv.NumField() {
		if sv.Field(i).IsZero() {
			sv.Field(i).Set(ev.Field(i))
		}
	}
}

// data is the result that expressions and the journal see.
func (u *unit) data(before svcmgr.State, res svcmgr.Result) map[string]any {
	return map[string]any{
		"service":      u.svc.Name,
		"manager":      u.name,
		"state_before": before.String(),
		"pid":          res.PID,
		"killed":       res.Killed,
		"kill_reason":  res.KillReason,
	}
}

// stopMsg says what a stop did beyond stopping, for the result's msg and
// the log: the SIGKILL and why, or why kill_when_unlocked did not apply.
// It is "" for a plain stop.
func (u *unit) stopMsg(res svcmgr.Result) string {
	var parts []string
	if res.Killed {
		parts = append(parts, res.KillReason)
	}
	if res.Note != "" {
		parts = append(parts, "kill_when_unlocked did not apply: "+res.Note)
	}
	if len(parts) == 0 {
		return ""
	}
	who := u.svc.Name
	if res.PID > 0 {
		who += fmt.Sprintf(" (pid %d)", res.PID)
	}
	return "stopped " + who + ": " + strings.Join(parts, "; ")
}

// withNote adds to what a stop did why kill_when_unlocked did not apply,
// when the manager is why.
func (u *unit) withNote(res svcmgr.Result) svcmgr.Result {
	if u.note != "" && res.Changed {
		res.Note = u.note
	}
	return res
}

// logStop logs what stopMsg says: a kill the runbook asked for with
// kill_when_unlocked is how the stop was meant to go; one at the kill-after
// limit, or an option that did not apply, is worth a look.
func (u *unit) logStop(h *modules.Host, res svcmgr.Result) {
	msg := u.stopMsg(res)
	if msg == "" {
		return
	}
	ev := h.Log.Warn()
	if res.Unlocked && res.Note == "" {
		ev = h.Log.Info()
	}
	ev.Str("service", u.svc.Name).Int("pid", res.PID).Msg(msg)
}

// status reads the state before the change, for the result.
func (u *unit) status(ctx context.Context, h *modules.Host) (svcmgr.State, error) {
	st, err := u.mgr.Status(ctx, h.Conn, u.svc)
	if err != nil {
		return st, fmt.Errorf("%s: %w", u.context, err)
	}
	return st, nil
}

// stop and start report the state the manager found before it acted: a
// check of their own would be one more round trip before the stop signal,
// and inside the outage before the start.
func (u *unit) stop(ctx context.Context, h *modules.Host) (modules.Result, error) {
	res, err := u.mgr.Stop(ctx, h.Conn, u.svc)
	res = u.withNote(res)
	out := modules.Result{Changed: res.Changed, Data: u.data(res.Before, res)}
	if msg := u.stopMsg(res); msg != "" {
		out.Data["msg"] = msg
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w", u.context, err)
	}
	u.logStop(h, res)
	return out, nil
}

func (u *unit) start(ctx context.Context, h *modules.Host) (modules.Result, error) {
	begin := time.Now()
	res, err := u.mgr.Start(ctx, h.Conn, u.svc)
	out := modules.Result{Changed: res.Changed, Data: u.data(res.Before, res)}
	if err != nil {
		return out, fmt.Errorf("%s: %w", u.context, err)
	}
	if err := u.awaitReady(ctx, h, begin); err != nil {
		return out, err
	}
	return out, nil
}

// awaitReady polls the readiness probe until the wait that began at begin
// is over. A service that was already running is checked too: a start step
// promises a service that answers.
func (u *unit) awaitReady(ctx context.Context, h *modules.Host, begin time.Time) error {
	if u.ready == nil {
		return nil
	}
	left := u.wait - time.Since(begin)
	what, f := u.readyProbe(h, left)
	if _, err := probe.Poll(ctx, what, left, readyInterval, f); err != nil {
		return fmt.Errorf("%s runs, but is not ready: %w", u.svc.Name, err)
	}
	return nil
}

// readyProbe returns one try of the readiness probe, each bounded by a
// share of left, and what it waits for.
func (u *unit) readyProbe(h *modules.Host, left time.Duration) (string, probe.Func) {
	try := min(max(left, time.Second), readyTry)
	if u.ready.TCP != "" {
		p := probe.NewPort(h, u.ready.TCP)
		return u.ready.TCP + " to accept connections", func(ctx context.Context) (bool, string, error) { return p.Try(ctx, try) }
	}
	p := probe.NewURL(h, u.ready.HTTP)
	return "GET " + u.ready.HTTP + " to answer 2xx", func(ctx context.Context) (bool, string, error) { return p.Try(ctx, try) }
}

func (u *unit) restart(ctx context.Context, h *modules.Host) (modules.Result, error) {
	stopped, err := u.mgr.Stop(ctx, h.Conn, u.svc)
	stopped = u.withNote(stopped)
	if err != nil {
		return modules.Result{Changed: stopped.Changed, Data: u.data(stopped.Before, stopped)}, fmt.Errorf("%s: stopping: %w", u.context, err)
	}
	begin := time.Now()
	started, err := u.mgr.Start(ctx, h.Conn, u.svc)
	u.logStop(h, stopped)
	data := u.data(stopped.Before, started)
	data["killed"] = stopped.Killed
	data["kill_reason"] = stopped.KillReason
	if msg := u.stopMsg(stopped); msg != "" {
		data["msg"] = msg
	}
	// A restart always reports a change: it is asked for because something
	// the process reads at start changed, even when it was not running.
	out := modules.Result{Changed: true, Data: data}
	if err != nil {
		return out, fmt.Errorf("%s: starting: %w", u.context, err)
	}
	return out, u.awaitReady(ctx, h, begin)
}

// Run stops or starts the service and waits as wait says.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	u, err := m.resolve(h, m.action)
	if err != nil {
		return modules.Result{}, err
	}
	if m.action == start {
		return u.start(ctx, h)
	}
	// Say now, not at rollback, that this stop could not be undone.
	if _, err := m.resolve(h, start); err != nil {
		h.Log.Warn().Err(err).Msg("if this stop must be undone, the automatic rollback cannot start the service again")
	}
	return u.stop(ctx, h)
}

// Check reads the service's state and reports whether Run would change it.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.check(ctx, h, m.action)
}

func (m *Module) check(ctx context.Context, h *modules.Host, act action) (modules.Result, error) {
	u, err := m.resolve(h, act)
	if err != nil {
		return modules.Result{}, err
	}
	st, err := u.status(ctx, h)
	if err != nil {
		return modules.Result{}, err
	}
	data := u.data(st, svcmgr.Result{})
	var changed bool
	switch act {
	case restart:
		changed = true
		data["msg"] = fmt.Sprintf("would restart %s (now %s)", u.svc.Name, st)
	case start:
		changed = st != svcmgr.Running
	default:
		changed = st != svcmgr.Stopped
	}
	if act != restart {
		if changed {
			data["msg"] = fmt.Sprintf("would %s %s (now %s)", act, u.svc.Name, st)
		} else {
			data["msg"] = fmt.Sprintf("%s is %s already", u.svc.Name, st)
		}
	}
	return modules.Result{Changed: changed, Data: data}, nil
}

// Undo starts what stop stopped and stops what start started, with the
// definition the host has now; a step that changed nothing has nothing to undo.
func (m *Module) Undo(ctx context.Context, h *modules.Host, done modules.Result) error {
	if !done.Changed {
		return nil
	}
	reverse := start
	if m.action == start {
		reverse = stop
	}
	u, err := m.resolve(h, reverse)
	if err != nil {
		return fmt.Errorf("undoing the %s: %w", m.action, err)
	}
	if reverse == start {
		_, err = u.start(ctx, h)
	} else {
		_, err = u.stop(ctx, h)
	}
	if err != nil {
		return fmt.Errorf("undoing the %s: %w", m.action, err)
	}
	return nil
}

// Run stops the service if it runs, starts it and waits for it to be ready.
func (r *Restart) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	u, err := (*Module)(r).resolve(h, restart)
	if err != nil {
		return modules.Result{}, err
	}
	return u.restart(ctx, h)
}

// Check reports the state; a restart always would change it.
func (r *Restart) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return (*Module)(r).check(ctx, h, restart)
}
