package spec

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

// Handlers, as Ansible users know them: `notify: NAME` on a step, and
// `handlers:` (steps with names) in the runbook or an imported file. A
// handler runs once per host, after the host's steps, when a step that
// notifies it changed something; handlers run in the order they are declared,
// and a failing one fails the host, whose rollback then runs.
//
// The loader turns them into ordinary steps: each notifying step registers
// its result (under a name of its own when it has no register:), and each
// notified handler becomes a step at the end of the steps with a `when:` that
// holds when one of those results changed. The runner, the journal and resume
// then need nothing of their own for handlers: a resumed host knows what
// changed from its registered results, as it does for any guard.

// Handler is set on the step a handler became.
type Handler struct {
	// NotifiedBy are the steps that notify it, in document order.
	NotifiedBy []*Step
}

// NotifiedProgram is the Name of the `when` the loader adds to a handler.
const NotifiedProgram = "notified"

// hiddenRegister is the register name of a notifying step without one of its own.
func hiddenRegister(seq int) string { return fmt.Sprintf("__notified_by_%d", seq) }

// IsHiddenRegister reports whether name was given by the loader, not the runbook.
func IsHiddenRegister(name string) bool { return strings.HasPrefix(name, "__notified_by_") }

// handlerScope holds the handlers of one file as imported once (or of the
// runbook), and the scope it was imported from.
type handlerScope struct {
	parent   *handlerScope
	handlers []*Step
	file     string
}

// notification is a step's notify:, resolved once every handler is read.
type notification struct {
	step  *Step
	names []string
	pos   diag.Pos
	scope *handlerScope
}

// readNotify reads a step's notify: and makes sure its result is registered.
func (l *loader) readNotify(s *Step, v *yaml.Node, failed bool) {
	switch {
	case l.inHandlers:
		l.ds.Add(l.pos(v), "a handler cannot notify", "notify the handlers from the steps that change something")
		return
	case s.Phase != PhaseSteps || failed:
		l.ds.Add(l.pos(v), fmt.Sprintf("\"notify\" is for the steps of steps:, not %s", s.Phase),
			"handlers run after a host's steps, when one of them changed something")
		return
	}
	var names arg.StringList
	l.decodeKey(v, &names, "notify")
	if len(names) == 0 {
		return
	}
	for i, n := range names {
		if strings.TrimSpace(n) == "" || strings.Contains(n, "{{") {
			l.ds.Add(l.pos(v), fmt.Sprintf("\"notify[%d]\" must name a handler", i), "a handler's name, as written in handlers:")
			return
		}
	}
	s.Notify = names
	if s.Register == "" {
		s.Register = hiddenRegister(s.seq)
		l.regs = append(l.regs, registration{name: s.Register, seq: s.seq, pos: l.pos(v)})
	}
	l.notifications = append(l.notifications, notification{step: s, names: names, pos: l.pos(v), scope: l.handlerScope})
}

// handlerList reads a handlers: list into scope.
func (l *loader) handlerList(n *yaml.Node, id string, scope *handlerScope) {
	if n == nil {
		return
	}
	saved := l.inHandlers
	l.inHandlers = true
	steps := l.stepList(n, "handlers", PhaseSteps, id, false, false)
	l.inHandlers = saved
	seen := map[string]diag.Pos{}
	for _, s := range steps {
		if s.NamePos.Line == 0 || s.NameTemplate != nil {
			l.ds.Add(s.Pos, "a handler needs a name", "notify: finds a handler by its name: add name: without {{ }}")
			continue
		}
		if p, dup := seen[s.Name]; dup {
			l.ds.Add(s.NamePos, fmt.Sprintf("two handlers are named %q", s.Name), fmt.Sprintf("the other is at %s", p))
			continue
		}
		seen[s.Name] = s.NamePos
		s.Handler = &Handler{}
		scope.handlers = append(scope.handlers, s)
	}
	l.allHandlers = append(l.allHandlers, scope)
}

// resolveHandlers finds the handler of every notify: (in the step's own file
// first, then in the files that imported it, then in the runbook), and puts
// the notified handlers at the end of steps, each guarded by its notifiers.
func (l *loader) resolveHandlers(rb *Runbook) {
	for _, nt := range l.notifications {
		for _, name := range nt.names {
			h := findHandler(nt.scope, name)
			if h == nil {
				l.ds.Add(nt.pos, fmt.Sprintf("no handler is named %q", name), handlerHint(name, nt.scope))
				continue
			}
			if !containsStep(h.Handler.NotifiedBy, nt.step) {
				h.Handler.NotifiedBy = append(h.Handler.NotifiedBy, nt.step)
			}
		}
	}
	for _, sc := range l.allHandlers {
		for _, h := range sc.handlers {
			if len(h.Handler.NotifiedBy) == 0 {
				l.ds.Add(h.NamePos, fmt.Sprintf("handler %q is never notified", h.Name),
					"add notify: \""+h.Name+"\" to the steps that should run it, or remove it")
				l.ds[len(l.ds)-1].Severity = diag.Warning
				continue
			}
			h := h
			l.compile = append(l.compile, func() { l.notifiedWhen(h) })
			rb.Steps = append(rb.Steps, h)
		}
	}
}

// notifiedWhen adds the guard that runs handler h only when a notifier changed.
func (l *loader) notifiedWhen(h *Step) {
	var parts []string
	for _, s := range h.Handler.NotifiedBy {
		parts = append(parts, s.Register+"?.changed == true")
	}
	src := strings.Join(parts, " || ")
	env := l.env(h.seq, false)
	p, ds := eval.Compile(src, h.NamePos, env, eval.Bool)
	if ds.HasErrors() {
		// The names are the loader's own: this is a bug, said as one.
		l.ds.Add(h.NamePos, fmt.Sprintf("internal error: the guard of handler %q does not compile: %v", h.Name, ds), "")
		return
	}
	p.Name = NotifiedProgram
	h.When = append(h.When, p)
}

func findHandler(sc *handlerScope, name string) *Step {
	for ; sc != nil; sc = sc.parent {
		for _, h := range sc.handlers {
			if h.Name == name {
				return h
			}
		}
	}
	return nil
}

func handlerHint(name string, sc *handlerScope) string {
	var names []string
	for ; sc != nil; sc = sc.parent {
		for _, h := range sc.handlers {
			names = append(names, h.Name)
		}
	}
	if len(names) == 0 {
		return "declare it under handlers: (in the runbook, or in the imported file)"
	}
	if s := diag.Suggest(name, names); s != "" {
		return s
	}
	sort.Strings(names)
	return "the handlers are: " + strings.Join(names, ", ")
}

func containsStep(ss []*Step, s *Step) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
