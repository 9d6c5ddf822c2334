package eval

import (
	"slices"
	"testing"
)

// TestLoopNames: item and loop_index are in scope only where Env.Loop says,
// and a use elsewhere is an error with or without an inventory.
func TestLoopNames(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		loop   bool
		strict bool
		want   []string // diagnostics; none means it compiles
	}{
		{name: "item in a loop", src: `item.name + string(loop_index)`, loop: true, strict: true},
		{name: "item shadows nothing it should not", src: `item.vars.etcd_url != host.name`, loop: true, strict: true},
		{
			name: "item outside a loop, strict", src: `item.name == "x"`, strict: true,
			want: []string{`rb.yml:12:9: item is only set inside a step with loop:; add loop: to the step (such as loop: '{{ group("etcd") }}'), or use another name`},
		},
		{
			name: "item outside a loop, without an inventory", src: `count > 1 && item == "x"`,
			want: []string{`rb.yml:12:22: item is only set inside a step with loop:; add loop: to the step (such as loop: '{{ group("etcd") }}'), or use another name`},
		},
		{
			name: "loop_index outside a loop", src: `loop_index > 0`, strict: true,
			want: []string{`rb.yml:12:9: loop_index is only set inside a step with loop:; add loop: to the step (such as loop: '{{ group("etcd") }}'), or use another name`},
		},
		{
			// item is reserved everywhere, so no let takes it over.
			name: "a let cannot name its own item", src: `let item = 1; item + 1`, strict: true,
			want: []string{`rb.yml:12:13: cannot redeclare item`},
		},
		{name: "a field named item is no use of it", src: `limits.item == nil && {"item": 1}.item == 1`, strict: true},
		{
			name: "no suggestion of item outside a loop", src: `iten == 1`, strict: true,
			want: []string{`rb.yml:12:9: unknown name "iten" in expression`},
		},
		{
			name: "suggested inside a loop", src: `iten == 1`, loop: true, strict: true,
			want: []string{`rb.yml:12:9: unknown name "iten" in expression; did you mean "item"?`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(tt.strict)
			env.Loop = tt.loop
			p, ds := Compile(tt.src, at, env, Any)
			if got := lines(ds); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.want)
			}
			if (p == nil) != (len(tt.want) > 0) {
				t.Errorf("program %v with diagnostics %q", p, lines(ds))
			}
		})
	}
}

func TestLoopScope(t *testing.T) {
	env := testEnv(true)
	env.Loop = true
	tpl, ds := ParseTemplate(`{{ loop_index }}:{{ item.name }}`, at, env)
	if ds.HasErrors() {
		t.Fatal(lines(ds))
	}
	s := testScope()
	s.Loop = &Loop{Item: testInventory.hosts[1], Index: 1}
	if got, err := tpl.Render(s); err != nil || got != "1:etcd-2" {
		t.Errorf("Render = %v, %v; want 1:etcd-2", got, err)
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		src     string
		want    []any
		wantErr string
	}{
		{src: `group("etcd") | map(#.name)`, want: []any{"etcd-3", "etcd-1", "etcd-2"}},
		{src: `tags`, want: []any{"a", "b"}},
		{src: `[]`, want: []any{}},
		{src: `limits.cpu`, wantErr: `rb.yml:12:9: loop: got int 2 where a list is needed (in ` + "`limits.cpu`)"},
		{src: `etcd_data_dir`, wantErr: `rb.yml:12:9: loop: got nil where a list is needed; a name in it may be undefined (in ` + "`etcd_data_dir`)"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p := mustCompile(t, tt.src, List)
			p.Name = "loop"
			got, err := p.List(testScope())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("List = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("List = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
	// group() gives []Host: each item is a host, with its fields.
	hosts, err := mustCompile(t, `group("etcd")`, List).List(testScope())
	if err != nil || len(hosts) != 3 || hosts[0].(Host).Name != "etcd-3" {
		t.Errorf("List = %#v, %v", hosts, err)
	}
}

func TestListKindAtCompile(t *testing.T) {
	_, ds := Compile(`etcd_version`, at, testEnv(true), List)
	want := []string{`rb.yml:12:9: expression gives string, but it must give a list; such as group("etcd"), or a var that holds a list`}
	if got := lines(ds); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}
