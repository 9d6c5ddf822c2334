// Package eval compiles and runs the expressions of a runbook (expr-lang/expr):
// guards such as `when`, and the {{ }} templates inside strings. Everything is
// compiled at load, so a typo is a load error at its own line and column.
package eval

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/runbookhq/runbook/internal/diag"
)

// Kind is what an expression must evaluate to.
type Kind int

const (
	Any  Kind = iota
	Bool      // guards: when, until, failed_when, changed_when, expect
	List      // loop: a list to run a step over
)

// Env declares the names an expression may use when it is compiled. Values are
// samples: only their types matter at compile time.
//
// Later groups shadow earlier ones: functions < Vars < Registered < Extra <
// host, run, result, failed, completed, item, loop_index. A run-time value
// must have the type of its sample (an int var stays an int), since the
// program is compiled for it.
type Env struct {
	// Vars are the merged variables known at load: runbook vars, and when an
	// inventory is given, every host's vars and the -e vars. A nil sample is
	// typed `any`.
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
	// assert-metric); the value's type is what the compiler checks against. A
	// map's keys are not checked; pass a struct value to have fields checked.
	Extra map[string]any
	// Loop puts `item` (any) and `loop_index` (int) in scope, for the fields of
	// a step with loop:. Without it, using either is an error, also when the
	// env is not strict: they can never come from an inventory.
	Loop bool
	// VarOrigin, when set, says where the value of a var in Vars was set:
	// "-e" for the command line, or a file position. A type error about a
	// var then names it, where it came from and how to give it the right type.
	VarOrigin func(name string) string
	// Params are the names an import binds for the imported steps; each use
	// is replaced by its value when compiled (see Param). They shadow Vars.
	Params map[string]Param
}

// Host is how a host looks to expressions: host.name, host.addr, host.groups, host.vars.
type Host struct {
	Name   string         `expr:"name" json:"name"`
	Addr   string         `expr:"addr" json:"addr"`
	Groups []string       `expr:"groups" json:"groups"`
	Vars   map[string]any `expr:"vars" json:"vars"`
}

// Run is how the run looks to expressions: run.id, run.batch, run.started,
// run.resumed.
type Run struct {
	ID      string    `expr:"id" json:"id"`
	Batch   int       `expr:"batch" json:"batch"`
	Started time.Time `expr:"started" json:"started"`
	// Resumed is true in `runbook resume`: preflight runs again then, and a
	// runbook may accept there the half-done state that a fresh run refuses.
	Resumed bool `expr:"resumed" json:"resumed,omitempty"`
	// Done names the hosts that completed every step so far, in the order
	// they did: in between_batches, the fleet already changed, which a
	// circuit breaker compares with the hosts not yet changed.
	Done []string `expr:"done" json:"done,omitempty"`
}

// Inventory is what inventory look-ups (group("etcd")) need at run time.
type Inventory interface {
	// Group returns the hosts of a group (or of a host pattern) in inventory order.
	Group(name string) []Host
}

// Scope holds the values an expression sees when it runs. Expressions only
// read it, so one Scope may serve many expressions, but not while it is changed.
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
	// Loop is the item a step with loop: runs for; nil outside a loop.
	Loop *Loop
	// PromQL, when set, answers promql() (assert-metric sets it to its own
	// server and credentials); nil asks the server at the var prometheus_url.
	PromQL func(query string) (float64, error)
	// Rendered, when set, is called with the value of every {{ }} part that a
	// template renders in this scope, and not with the template's own text
	// around it: the runner marks what a no_log step's templates render as
	// secret, without the words of the runbook.
	Rendered func(v any)
	// Now is the run's clock, which in_window reads; time.Now when nil.
	Now func() time.Time
}

func (s *Scope) now() time.Time {
	if s != nil && s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Loop is what `item` and `loop_index` hold while a step with loop: runs for
// one of its items.
type Loop struct {
	Item  any
	Index int
}

// Program is a compiled expression. It is immutable once compiled and safe to
// run from many goroutines at once.
type Program struct {
	Src  string
	Pos  diag.Pos // where Src starts in the file
	Kind Kind
	// Name says what the expression is for (when, until, dest) in run-time
	// errors; the loader may set it after Compile.
	Name string

	prog   *vm.Program
	origin origin
	env    *Env        // what it was compiled against, for CheckVars
	ce     *compileEnv // for Why, which compiles the expression's parts
	why    *whyTree
}

// Compile compiles src, which starts at pos in its file. Positions of errors
// inside src are mapped to the file: on src's first line, column = pos.Col +
// the column within src; on later lines, line = pos.Line + n and the column is
// pos.Col + the column within that line (block scalars keep one indentation).
//
// A nil env declares no names and is not strict. The result has a Program
// exactly when the diagnostics hold no error; they may hold warnings.
func Compile(src string, pos diag.Pos, env *Env, kind Kind) (*Program, diag.Diags) {
	return compile(src, origin{pos: pos, firstCol: pos.Col, laterCol: pos.Col}, env, kind)
}

// CompileMapped is Compile for a text that is not laid out in the file as it
// is in src, such as a folded YAML scalar (>), whose lines are joined with
// spaces: at holds the file position of each rune of src, so that an error
// points at its place in the file.
func CompileMapped(src string, at []diag.Pos, env *Env, kind Kind) (*Program, diag.Diags) {
	return compile(src, mappedOrigin(src, at), env, kind)
}

// mappedOrigin is the origin of text whose runes are at the positions at.
func mappedOrigin(text string, at []diag.Pos) origin {
	if len(at) == 0 {
		return origin{}
	}
	return origin{pos: at[0], firstCol: at[0].Col, laterCol: at[0].Col, mapped: at, text: text}
}

// origin maps a position inside an expression's text to its file. It differs
// from a plain Pos for a {{ }} part, whose later lines are indented as the
// template's, not as the part's first line.
type origin struct {
	pos      diag.Pos // pos.Line is the line of the text's first line
	firstCol int      // file column of the text's first character
	laterCol int      // file column of column 0 on the text's later lines
	// mapped, when set, is the file position of each rune of text, for text
	// laid out otherwise in the file (a folded scalar).
	mapped []diag.Pos
	text   string
}

// at returns the file position of rune column col0 (0-based) on line line0
// (0-based) of the text.
func (o origin) at(line0, col0 int) diag.Pos {
	if o.mapped != nil {
		off := runeOffset(o.text, line0, col0)
		if off >= len(o.mapped) {
			off = len(o.mapped) - 1
		}
		return o.mapped[off]
	}
	if !o.pos.IsValid() {
		return o.pos
	}
	p := o.pos
	if line0 == 0 {
		p.Col = o.firstCol + col0
	} else {
		p.Line += line0
		p.Col = o.laterCol + col0
	}
	return p
}

// runeOffset returns the rune offset in text of rune column col0 on line line0.
func runeOffset(text string, line0, col0 int) int {
	off, line := 0, 0
	for _, r := range text {
		if line == line0 {
			break
		}
		if r == '\n' {
			line++
		}
		off++
	}
	return off + col0
}

// sub is the origin of the text that starts at rune offset off of a mapped
// text.
func (o origin) sub(off int, text string) origin {
	if off >= len(o.mapped) {
		off = len(o.mapped) - 1
	}
	return mappedOrigin(text, o.mapped[off:])
}

// atOffset returns the file position of rune offset off in src.
func (o origin) atOffset(src string, off int) diag.Pos {
	line0, col0 := 0, 0
	n := 0
	for _, r := range src {
		if n == off {
			break
		}
		if r == '\n' {
			line0++
			col0 = 0
		} else {
			col0++
		}
		n++
	}
	return o.at(line0, col0)
}

func compile(src string, o origin, env *Env, kind Kind) (*Program, diag.Diags) {
	var ds diag.Diags
	if strings.TrimSpace(src) == "" {
		ds.Add(o.at(0, 0), "empty expression", "write an expression, such as host.name == \"etcd-1\"")
		return nil, ds
	}
	if env == nil {
		env = &Env{}
	}
	ce := newCompileEnv(env)
	chk := &callChecker{env: ce, src: src, origin: o}
	// Kind Bool is checked here rather than with expr.AsBool, which also
	// turns nil into false at run time: a guard over a name that turns out to be
	// undefined would then skip its step silently instead of failing.
	opts := append(ce.options(), expr.Patch(chk))
	opts = append(opts, paramOptions(env)...)
	prog, err := expr.Compile(src, opts...)
	chk.finish()
	ds.Append(chk.diags)
	ds.Append(chk.warnings())
	if err != nil {
		d := ce.translate(err, src, o)
		if md, ok := ce.mismatch(err, src, o, env); ok {
			d = md
		}
		if !chk.reported(d.Pos) {
			ds = append(ds, d)
		}
	} else if t := prog.Node().Type(); kind == Bool && t != nil && t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
		ds.Add(o.at(0, 0), fmt.Sprintf("expression gives %s, but it must give true or false", typeName(t)),
			`compare it, e.g. x == "yes" or x > 0`)
	} else if kind == List && t != nil && !isList(t.Kind()) && t.Kind() != reflect.Interface {
		ds.Add(o.at(0, 0), fmt.Sprintf("expression gives %s, but it must give a list", typeName(t)),
			`such as group("etcd"), or a var that holds a list`)
	}
	if ds.HasErrors() {
		ds.Sort()
		return nil, ds
	}
	return &Program{Src: src, Pos: o.at(0, 0), Kind: kind, prog: prog, origin: o, env: env, ce: ce, why: &whyTree{}}, ds
}

// Eval runs the program against s. A nil s is an empty scope.
func (p *Program) Eval(s *Scope) (any, error) {
	return p.exec(s.env(), p.Name)
}

// Bool runs a Bool program; a non-bool result is an error.
func (p *Program) Bool(s *Scope) (bool, error) {
	v, err := p.Eval(s)
	if err != nil {
		return false, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, p.errorAt(p.Pos, p.Name, errors.New("got nil where true or false is needed; a name in it may be undefined"))
	default:
		return false, p.errorAt(p.Pos, p.Name, fmt.Errorf("got %s where true or false is needed", describe(v)))
	}
}

// List runs a List program; anything but a list (or an array) is an error
// that names the type it got.
func (p *Program) List(s *Scope) ([]any, error) {
	v, err := p.Eval(s)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, p.errorAt(p.Pos, p.Name, errors.New("got nil where a list is needed; a name in it may be undefined"))
	}
	rv := reflect.ValueOf(v)
	if !isList(rv.Kind()) {
		return nil, p.errorAt(p.Pos, p.Name, fmt.Errorf("got %s where a list is needed", describe(v)))
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, nil
}

func isList(k reflect.Kind) bool { return k == reflect.Slice || k == reflect.Array }

// describe names a value and its type for an error message: string "yes".
func describe(v any) string {
	if s, ok := v.(string); ok {
		return "string " + strconv.Quote(shorten(s))
	}
	return typeName(reflect.TypeOf(v)) + " " + shorten(fmt.Sprint(v))
}

// typeName is a Go type as runbook writers know it.
func typeName(t reflect.Type) string {
	return typeNames.Replace(t.String())
}

var typeNames = strings.NewReplacer("interface {}", "any", "eval.Host", "host", "eval.Run", "run", "time.Duration", "duration", "time.Time", "time")

// exec runs the program in env; name is what errors say it is for.
func (p *Program) exec(env map[string]any, name string) (any, error) {
	out, err := expr.Run(p.prog, env)
	if err != nil {
		return nil, p.runError(err, name)
	}
	return out, nil
}

// runError places a run-time error of expr at the failing part of the expression.
func (p *Program) runError(err error, name string) *Error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return p.errorAt(p.Pos, name, err)
	}
	cause := fe.Prev
	if cause == nil {
		cause = errors.New(fe.Message)
	}
	pos := p.Pos
	if fe.Line > 0 {
		pos = p.origin.at(fe.Line-1, fe.Column)
	}
	return p.errorAt(pos, name, cause)
}

func (p *Program) errorAt(pos diag.Pos, name string, err error) *Error {
	return &Error{Pos: pos, Name: name, Src: p.Src, Err: err}
}

// Error is a run-time error of an expression: where in the file, which
// expression, and what went wrong.
type Error struct {
	Pos  diag.Pos // the failing part of the expression
	Name string   // what the expression is for (when, dest); may be empty
	Src  string   // the expression
	Err  error
}

// Error formats the error as FILE:LINE:COL: NAME: MESSAGE (in `SRC`).
func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.File != "" || e.Pos.Line > 0 {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if src := shorten(e.Src); src != "" {
		fmt.Fprintf(&b, " (in `%s`)", src)
	}
	return b.String()
}

// Unwrap returns the cause, such as the error of a function.
func (e *Error) Unwrap() error { return e.Err }

// shorten puts s on one line and cuts it to a length that still reads well
// inside an error message.
func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 60
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
