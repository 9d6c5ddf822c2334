package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/eval"
)

// groupInv is an inventory with one group, for group() in loops.
type groupInv []eval.Host

func (g groupInv) Group(string) []eval.Host { return g }

// TestLoopItems loads loops of each shape and renders their items as a host's
// step would: a list keeps literal elements, renders templated ones (a lone
// {{ }} keeps its type) and nested ones; one {{ }} gives its list.
func TestLoopItems(t *testing.T) {
	hosts := groupInv{{Name: "etcd-1", Addr: "10.0.0.1"}, {Name: "etcd-2", Addr: "10.0.0.2"}}
	tests := []struct {
		name    string
		loop    string
		src     string // Loop.Src, as the plan shows it
		want    []any
		wantErr string
	}{
		{name: "literal list", loop: "[a, 2, true]", src: "[a, 2, true]", want: []any{"a", 2, true}},
		{name: "block list", loop: "\n      - a\n      - { k: v }", src: "[a, {k: v}]", want: []any{"a", map[string]any{"k": "v"}}},
		{name: "templated elements keep their type", loop: `['{{ port }}', 'p{{ port }}', '{{ members }}']`,
			src: `['{{ port }}', 'p{{ port }}', '{{ members }}']`, want: []any{2379, "p2379", []any{"a", "b"}}},
		{name: "templates nested in an element", loop: `[{ name: '{{ host.name }}', port: '{{ port }}' }]`,
			src: `[{name: '{{ host.name }}', port: '{{ port }}'}]`, want: []any{map[string]any{"name": "etcd-1", "port": 2379}}},
		{name: "one expression", loop: `'{{ members }}'`, src: `{{ members }}`, want: []any{"a", "b"}},
		{name: "hosts of a group", loop: `'{{ group("etcd") }}'`, src: `{{ group("etcd") }}`, want: []any{hosts[0], hosts[1]}},
		{name: "blanks around the one {{ }}", loop: `' {{ members | map(upper(#)) }} '`, src: `{{ members | map(upper(#)) }}`, want: []any{"A", "B"}},
		{name: "empty", loop: "[]", src: "[]", want: []any{}},
		{name: "not a list at run time", loop: `'{{ maybe }}'`, src: `{{ maybe }}`,
			wantErr: `rb.yml:6:14: loop: got string "one" where a list is needed (in ` + "`maybe`)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "runbook: r\nhosts: etcd\nvars: { port: 2379, members: [a, b], maybe: null }\nsteps:\n  - command: { cmd: [echo, '{{ item }}'] }\n    loop: " + tt.loop + "\n"
			rb, ds := LoadBytes("rb.yml", []byte(src), testRegistry(), LoadOptions{})
			if ds.HasErrors() {
				t.Fatal(ds.Err())
			}
			lp := rb.Steps[0].Loop
			if lp == nil || lp.Src != tt.src {
				t.Fatalf("loop %+v, want Src %q", lp, tt.src)
			}
			scope := &eval.Scope{Vars: map[string]any{"port": 2379, "members": []any{"a", "b"}, "maybe": "one"},
				Host: hosts[0], Inventory: hosts}
			got, err := lp.Items(scope)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Items = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Items = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// TestLoopScope: the step's fields see item and loop_index, and its
// arguments render per item.
func TestLoopScope(t *testing.T) {
	src := `runbook: r
hosts: etcd
steps:
  - name: 'echo {{ item }}'
    command: { cmd: [echo, '{{ loop_index }}:{{ item }}'] }
    loop: [a, b]
    when: item != "x" && loop_index >= 0
    delegate_to: '{{ item }}'
    retries: 1
    until: result.rc == 0 || item == "b"
`
	rb, ds := LoadBytes("rb.yml", []byte(src), testRegistry(), LoadOptions{Vars: map[string]any{}})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	s := rb.Steps[0]
	args, err := s.NewArgs(testRegistry(), &eval.Scope{Loop: &eval.Loop{Item: "b", Index: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args.(*commandArgs).Cmd, " "); got != "echo 1:b" {
		t.Errorf("cmd %q, want echo 1:b", got)
	}
	if s.Loop == nil || s.NameTemplate == nil || s.DelegateTemplate == nil || len(s.When) != 1 || s.Until == nil {
		t.Errorf("step %+v", s)
	}
}
