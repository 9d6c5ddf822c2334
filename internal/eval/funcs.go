package eval

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// FuncDoc documents one function for `runbook doc expressions`.
type FuncDoc struct {
	Name      string // semver_lt
	Signature string // semver_lt(a, b string) bool
	Doc       string // one line
	Example   string // expression
	// Builtin marks a function of expr-lang itself, listed because runbooks
	// often need it; ours never duplicate one.
	Builtin bool
}

// function is one function of ours: static ones are expr.Functions, whose
// signatures expr checks at compile time; bound ones need the run's scope (the
// inventory) and are put in the env as Go funcs, which expr checks the same way.
type function struct {
	doc   FuncDoc
	fn    func(params ...any) (any, error)
	types []any
	// bound returns the function over s; sample is a typed nil of it.
	bound  func(s *Scope) any
	sample any
	// literal checks argument i when the expression writes it as a string
	// literal, so that a bad version or window fails at load.
	literal func(i int, s string) error
}

// Functions lists the functions runbooks can call, sorted by name.
func Functions() []FuncDoc {
	out := make([]FuncDoc, 0, len(functions)+len(builtinDocs))
	for _, f := range functions {
		out = append(out, f.doc)
	}
	out = append(out, builtinDocs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// builtinDocs are the expr built-ins an ops runbook reaches for first. The
// rest of expr's library (len, map, filter, upper, split, ...) is described in
// the language text.
var builtinDocs = []FuncDoc{
	{Name: "date", Signature: "date(s string [, layout string [, zone string]]) time", Doc: "parses a date and time (RFC 3339 and common layouts, or the Go layout given)", Example: `date("2025-01-31T02:00:00Z") < now()`, Builtin: true},
	{Name: "duration", Signature: "duration(s string) duration", Doc: "parses a Go duration such as 90s, 1m30s or 250ms", Example: `duration("1m30s") > duration("60s")`, Builtin: true},
	{Name: "fromJSON", Signature: "fromJSON(s string) any", Doc: "decodes JSON text, such as a command's output", Example: `fromJSON("{\"health\": true}").health`, Builtin: true},
	{Name: "now", Signature: "now() time", Doc: "the current time", Example: `now().Sub(run.started) < duration("2h")`, Builtin: true},
	{Name: "toJSON", Signature: "toJSON(v any) string", Doc: "encodes v as indented JSON", Example: `toJSON(host.groups)`, Builtin: true},
}

var functions = []*function{
	{
		doc: FuncDoc{Name: "default", Signature: "default(v, fallback any) any",
			Doc: "v, or fallback when v is nil or an empty string", Example: `default(etcd_data_dir, "/var/lib/etcd")`},
		fn: func(p ...any) (any, error) {
			if p[0] == nil || p[0] == "" {
				return p[1], nil
			}
			return p[0], nil
		},
		types: []any{new(func(any, any) any)},
	},
	{
		doc: FuncDoc{Name: "dirname", Signature: "dirname(path string) string",
			Doc: "the folder of a path, cleaned (Ansible's dirname filter)", Example: `dirname("/opt/etcd/bin/etcd") == "/opt/etcd/bin"`},
		fn: func(p ...any) (any, error) {
			s, ok := p[0].(string)
			if !ok {
				return nil, fmt.Errorf("dirname needs a string, got %T", p[0])
			}
			return filepath.Dir(s), nil
		},
		types: []any{new(func(string) string)},
	},
	{
		doc: FuncDoc{Name: "group", Signature: "group(name string) []host",
			Doc: "the hosts of a group or host pattern, in inventory order", Example: `group("etcd") | map(#.name)`},
		sample: (func(string) ([]Host, error))(nil),
		bound: func(s *Scope) any {
			return func(name string) ([]Host, error) {
				if s.Inventory == nil {
					return nil, fmt.Errorf("group(%q): %w", name, errNoInventory)
				}
				hosts := s.Inventory.Group(name)
				if hosts == nil {
					hosts = []Host{} // so that it renders as [], not null
				}
				return hosts, nil
			}
		},
	},
	{
		doc: FuncDoc{Name: "hostvars", Signature: "hostvars(name string) map",
			Doc: "the vars of the named host", Example: `hostvars("etcd-1").etcd_url`},
		sample: (func(string) (map[string]any, error))(nil),
		bound: func(s *Scope) any {
			return func(name string) (map[string]any, error) {
				if s.Inventory == nil {
					return nil, fmt.Errorf("hostvars(%q): %w", name, errNoInventory)
				}
				for _, h := range s.Inventory.Group(name) {
					if h.Name == name {
						if h.Vars == nil {
							return map[string]any{}, nil
						}
						return h.Vars, nil
					}
				}
				return nil, fmt.Errorf("hostvars(%q): no host of that name in the inventory", name)
			}
		},
	},
	{
		doc: FuncDoc{Name: "in_window", Signature: "in_window(spec string [, t time]) bool",
			Doc:     `whether t (default now, the run's clock) falls in the weekly window spec: "DAYS HH:MM-HH:MM ZONE"`,
			Example: `in_window("Mon-Fri 02:00-05:00 UTC")`},
		// Bound, so that "now" is the run's clock (Scope.Now): the same one
		// its window: key is judged by, and a test's fake one.
		sample: (func(string, ...time.Time) (bool, error))(nil),
		bound: func(s *Scope) any {
			return func(spec string, at ...time.Time) (bool, error) {
				w, err := parseWindow(spec)
				if err != nil {
					return false, err
				}
				switch len(at) {
				case 0:
					return w.contains(s.now()), nil
				case 1:
					return w.contains(at[0]), nil
				}
				return false, fmt.Errorf("in_window: want a window and at most one time, got %d times", len(at))
			}
		},
		literal: func(i int, s string) error {
			if i != 0 {
				return nil
			}
			_, err := parseWindow(s)
			return err
		},
	},
	{
		doc: FuncDoc{Name: "seconds", Signature: "seconds(d duration) float",
			Doc: "d in seconds, with fractions", Example: `seconds(duration("1m30s")) == 90`},
		fn: func(p ...any) (any, error) {
			d, ok := p[0].(time.Duration)
			if !ok {
				return nil, fmt.Errorf("seconds: want a duration, got %T (use duration(\"90s\") for a string)", p[0])
			}
			return d.Seconds(), nil
		},
		types: []any{new(func(time.Duration) float64)},
	},
	semverCompare("semver_cmp", "semver_cmp(a, b string) int",
		"-1, 0 or 1 as version a is older than, equal to or newer than b", `semver_cmp(etcd_version, "3.6.0") >= 0`,
		func(c int) any { return c }, new(func(string, string) int)),
	semverCompare("semver_eq", "semver_eq(a, b string) bool",
		"whether a and b are the same version (v3.6.0 equals 3.6.0)", `semver_eq(etcd_version, "v3.6.16")`,
		func(c int) any { return c == 0 }, new(func(string, string) bool)),
	semverCompare("semver_ge", "semver_ge(a, b string) bool",
		"whether version a is b or newer", `semver_ge(etcd_version, "3.5.0")`,
		func(c int) any { return c >= 0 }, new(func(string, string) bool)),
	semverCompare("semver_gt", "semver_gt(a, b string) bool",
		"whether version a is newer than b", `semver_gt("3.6.16", etcd_version)`,
		func(c int) any { return c > 0 }, new(func(string, string) bool)),
	semverCompare("semver_le", "semver_le(a, b string) bool",
		"whether version a is b or older", `semver_le(etcd_version, "3.6.16")`,
		func(c int) any { return c <= 0 }, new(func(string, string) bool)),
	semverCompare("semver_lt", "semver_lt(a, b string) bool",
		"whether version a is older than b (3.6.9 < 3.6.16; 3.6.0-rc.1 < 3.6.0)", `semver_lt(etcd_version, "3.6.0")`,
		func(c int) any { return c < 0 }, new(func(string, string) bool)),
	semverPart("semver_major", "semver_major(v string) int", "the major number of version v", `semver_major("v3.6.16") == 3`,
		func(v *semver.Version) any { return int(v.Major()) }, new(func(string) int)),
	semverPart("semver_minor", "semver_minor(v string) int", "the minor number of version v", `semver_minor("3.6.16") == 6`,
		func(v *semver.Version) any { return int(v.Minor()) }, new(func(string) int)),
	semverPart("semver_minor_of", "semver_minor_of(v string) string", "major.minor of version v", `semver_minor_of("3.6.16") == "3.6"`,
		func(v *semver.Version) any { return fmt.Sprintf("%d.%d", v.Major(), v.Minor()) }, new(func(string) string)),
	semverPart("semver_patch", "semver_patch(v string) int", "the patch number of version v", `semver_patch("3.6.16") == 16`,
		func(v *semver.Version) any { return int(v.Patch()) }, new(func(string) int)),
	semverPair("semver_next_minor", "semver_next_minor(a, b string) bool",
		"whether b is exactly one minor above a in the same major (a one-step etcd upgrade)", `semver_next_minor("3.5.17", "3.6.0")`,
		func(a, b *semver.Version) bool { return a.Major() == b.Major() && b.Minor() == a.Minor()+1 }),
	semverPair("semver_same_minor", "semver_same_minor(a, b string) bool",
		"whether a and b have the same major and minor (3.6.1 and 3.6.16)", `semver_same_minor(etcd_version, "3.6.0")`,
		func(a, b *semver.Version) bool { return a.Major() == b.Major() && a.Minor() == b.Minor() }),
}

// version parses argument i of fn as a version; a leading "v" is allowed and
// missing parts count as zero ("3.6" is 3.6.0).
func version(fn string, p []any, i int) (*semver.Version, error) {
	s, ok := p[i].(string)
	if !ok {
		return nil, fmt.Errorf("%s: want a version string, got %T %v", fn, p[i], p[i])
	}
	return parseVersion(fn, s)
}

func parseVersion(fn, s string) (*semver.Version, error) {
	v, err := semver.NewVersion(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a version; write one such as 3.6.16 or v3.6.16", fn, s)
	}
	return v, nil
}

func checkVersionLiteral(fn string) func(int, string) error {
	return func(_ int, s string) error {
		_, err := parseVersion(fn, s)
		return err
	}
}

func semverCompare(name, sig, doc, example string, result func(int) any, typ any) *function {
	return &function{
		doc: FuncDoc{Name: name, Signature: sig, Doc: doc, Example: example},
		fn: func(p ...any) (any, error) {
			a, err := version(name, p, 0)
			if err != nil {
				return nil, err
			}
			b, err := version(name, p, 1)
			if err != nil {
				return nil, err
			}
			return result(a.Compare(b)), nil
		},
		types:   []any{typ},
		literal: checkVersionLiteral(name),
	}
}

func semverPair(name, sig, doc, example string, test func(a, b *semver.Version) bool) *function {
	return &function{
		doc: FuncDoc{Name: name, Signature: sig, Doc: doc, Example: example},
		fn: func(p ...any) (any, error) {
			a, err := version(name, p, 0)
			if err != nil {
				return nil, err
			}
			b, err := version(name, p, 1)
			if err != nil {
				return nil, err
			}
			return test(a, b), nil
		},
		types:   []any{new(func(string, string) bool)},
		literal: checkVersionLiteral(name),
	}
}

func semverPart(name, sig, doc, example string, part func(*semver.Version) any, typ any) *function {
	return &function{
		doc: FuncDoc{Name: name, Signature: sig, Doc: doc, Example: example},
		fn: func(p ...any) (any, error) {
			v, err := version(name, p, 0)
			if err != nil {
				return nil, err
			}
			return part(v), nil
		},
		types:   []any{typ},
		literal: checkVersionLiteral(name),
	}
}
