// Package eval compiles and runs the expressions of a runbook (expr-lang/expr):
// guards such as `when`, and the {{ }} templates inside strings. Everything is
// compiled at load, so a typo is a load error at its own line and column.
package eval

import (
	"time"

	"github.com/runbookhq/runbook/internal/diag"
)

// Kind is what an expression must evaluate to.
type Kind int

const (
	Any  Kind = iota
	Bool      // guards: when, until, failed_when, changed_when, expect
)

// Env declares the names an expression may use when it is compiled. Values are
// samples: only their types matter at compile time.
type Env struct {
	// Vars are the merged variables known at load: runbook vars, and when an
	// inventory is given, every host's vars and the -e vars.
	Vars map[string]any
	// Strict makes an unknown bare name an error. It is false when no inventory
	// was given, because names may then come from the inventory; field and
	// function typos (host.nmae, semver_lt(1)) are errors either way.
	Strict bool
	// Registered lists the names registered by earlier steps (register:); each is
	// a map[string]any at run time.
	Registered []string
	// Result puts `result` (the step's own result, map[string]any) in scope, for
	// until, failed_when and changed_when.
	Result bool
	// Failed puts `failed` (the failed step's name, error and result) and
	// `completed` (names of the steps that completed) in scope, for rollback steps.
	Failed bool
	// Extra declares more names (module facts such as `etcd`, metric look-ups in
	// assert-metric); the value's type is what the compiler checks against.
	Extra map[string]any
}

// Host is how a host looks to expressions: host.name, host.addr, host.groups, host.vars.
type Host struct {
	Name   string         `expr:"name"`
	Addr   string         `expr:"addr"`
	Groups []string       `expr:"groups"`
	Vars   map[string]any `expr:"vars"`
}

// Run is how the run looks to expressions: run.id, run.batch, run.started.
type Run struct {
	ID      string    `expr:"id"`
	Batch   int       `expr:"batch"`
	Started time.Time `expr:"started"`
}

// Inventory is what inventory look-ups (group("etcd")) need at run time.
type Inventory interface {
	// Group returns the hosts of a group (or of a host pattern) in inventory order.
	Group(name string) []Host
}

// Scope holds the values an expression sees when it runs.
type Scope struct {
	Vars       map[string]any
	Host       Host
	Run        Run
	Registered map[string]any
	Result     map[string]any
	Failed     map[string]any
	Completed  []string
	Inventory  Inventory
	Extra      map[string]any
}

// Program is a compiled expression.
type Program struct {
	Src  string
	Pos  diag.Pos // where Src starts in the file
	Kind Kind
	// compiled program, unexported
}

// Compile compiles src, which starts at pos in its file. Positions of errors
// inside src are mapped to the file: on src's first line, column = pos.Col +
// the column within src; on later lines, line = pos.Line + n and the column is
// pos.Col + the column within that line (block scalars keep one indentation).
func Compile(src string, pos diag.Pos, env *Env, kind Kind) (*Program, diag.Diags) {
	panic("unimplemented")
}

// Eval runs the program against s.
func (p *Program) Eval(s *Scope) (any, error) { panic("unimplemented") }

// Bool runs a Bool program; a non-bool result is an error.
func (p *Program) Bool(s *Scope) (bool, error) { panic("unimplemented") }

// Template is a string with {{ expr }} parts.
type Template struct {
	Src string
	Pos diag.Pos
	// parts, unexported
}

// IsTemplate reports whether s contains a {{ }} part.
func IsTemplate(s string) bool { panic("unimplemented") }

// ParseTemplate splits s into literal text and {{ }} expressions and compiles each;
// pos is where s starts in the file, mapped as in Compile.
func ParseTemplate(s string, pos diag.Pos, env *Env) (*Template, diag.Diags) {
	panic("unimplemented")
}

// Render evaluates the template. A string that is exactly one {{ }} keeps the
// value's type (a list stays a list, a number a number); otherwise the parts are
// formatted and joined into a string.
func (t *Template) Render(s *Scope) (any, error) { panic("unimplemented") }

// FuncDoc documents one function for `runbook doc expressions`.
type FuncDoc struct {
	Name      string // semver_lt
	Signature string // semver_lt(a, b string) bool
	Doc       string // one line
	Example   string // expression
}

// Functions lists the functions runbooks can call, sorted by name.
func Functions() []FuncDoc { panic("unimplemented") }
