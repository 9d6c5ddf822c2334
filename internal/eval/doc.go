package eval

import (
	"fmt"
	"io"
	"strings"
)

// WriteDoc writes Doc to w.
func WriteDoc(w io.Writer) error {
	_, err := io.WriteString(w, Doc())
	return err
}

// Doc returns the text of `runbook doc expressions`: the language, the names
// in scope, the template rules and the functions.
func Doc() string {
	var b strings.Builder
	b.WriteString(docIntro)
	b.WriteString("\nFUNCTIONS\n\n")
	for _, f := range Functions() {
		fmt.Fprintf(&b, "  %s\n      %s", f.Signature, f.Doc)
		if f.Builtin {
			b.WriteString(" (expr built-in)")
		}
		fmt.Fprintf(&b, "\n      e.g. %s\n", f.Example)
	}
	return b.String()
}

const docIntro = `EXPRESSIONS

Runbooks use one expression language everywhere: expr (https://expr-lang.org).
Guards (when, until, failed_when, changed_when, expect, order) are whole
expressions that must give true or false; strings take {{ expr }} parts.
Every expression is compiled when the runbook is loaded, so a typo fails
"runbook validate" at its file:line:col before any host is touched.
A guard that gives anything but true or false fails the step; nil (a name
that is not defined) is not taken as false: write x ?? false for that.

NAMES IN SCOPE

  VAR           the merged vars: runbook vars < group vars < host vars < -e vars
  host          the current host: host.name, host.addr, host.groups, host.vars
  run           the run: run.id, run.batch, run.started (a time), run.resumed,
                run.done (the hosts that completed every step so far)
  REGISTERED    the result of an earlier step that has register: REGISTERED
  result        the step's own result, in until, failed_when and changed_when
  failed        in rollback steps: the failed step's name, error and result
  completed     in rollback steps: the names of the steps that completed
  item          in a step with loop: the current item (loop_index: its index, from 0)
  FACTS         names a module provides, such as etcd in etcd steps

A var never hides host, run, result, failed, completed or item; it does hide a
function of the same name. Without an inventory (-i), unknown names are
allowed, since they may be host vars; one a letter away from a known name is
reported as a warning, and a name still unknown at run time is nil.
Fields (host.nmae) and function calls (semver_lt(1)) are checked either way.

TEMPLATES

  dest: 'backups/{{ host.name }}-{{ run.id }}.db'

  - A string that is exactly one {{ }}, blanks around it allowed, keeps the
    value's type: '{{ group("etcd") | map(#.vars.etcd_url) }}' is a list.
  - Otherwise each part becomes text and the parts are joined: strings as
    they are, numbers without trailing zeros (3, 2.5), nil as nothing,
    durations as 1m30s, times in RFC 3339, lists, maps and hosts as JSON.
  - Quotes, comments and braces inside a part are read as expr reads them,
    so {{ "}}" }} and {{ {"a": {"b": 1}}.a.b }} are one part each.
  - Write a literal {{ as {{ "{{" }}. A }} outside a part is plain text.
  - Quote a YAML string that starts with {{, or YAML reads it as a map.

THE LANGUAGE

  Compare and combine   == != < <= > >=   and or not   ?: (if-else)   ?? (default for nil)
  Arithmetic            + - * / % **
  Strings               + (concatenate), contains, startsWith, endsWith,
                        matches (a regular expression), upper, lower, trim, split, replace
  Lists and maps        [1, 2], {"a": 1}, x in list, len, map, filter, all, any,
                        none, count, first, last, sort, uniq, join, keys, values
  Predicates            # is the current element: filter(group("etcd"), #.name != host.name)
  Pipes                 a | f(b) is f(a, b): group("etcd") | map(#.vars.etcd_url) | join(",")
  Optional access       x?.y is nil when x is nil
  Variables             let n = len(group("etcd")); n >= 3

The full language: https://expr-lang.org/docs/language-definition
`
