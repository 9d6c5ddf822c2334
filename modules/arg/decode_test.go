package arg

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
)

// decodeString parses src and decodes it into out, returning the diagnostics
// as FILE:LINE:COL lines.
func decodeString(t *testing.T, d *Decoder, src string, out any) []string {
	t.Helper()
	n, ds := parse("f.yml", []byte(src))
	if ds.HasErrors() {
		t.Fatalf("parse: %v", ds.Err())
	}
	if d == nil {
		d = &Decoder{}
	}
	d.File, d.Source = "f.yml", []byte(src)
	d.Decode(n, out, &ds)
	ds.Sort()
	var got []string
	for _, x := range ds {
		got = append(got, x.Error())
	}
	return got
}

type inner struct {
	Dest string `yaml:"dest" runbook:"required"`
	Mode int    `yaml:"mode"`
}

type common struct {
	Name string `yaml:"name"`
}

type outer struct {
	common  `yaml:",inline"`
	Count   int            `yaml:"count"`
	Small   int8           `yaml:"small"`
	Size    uint           `yaml:"size"`
	Ratio   float64        `yaml:"ratio"`
	On      bool           `yaml:"on"`
	Tags    []string       `yaml:"tags"`
	Limits  map[string]int `yaml:"limits"`
	Etcd    *inner         `yaml:"etcd"`
	Items   []inner        `yaml:"items"`
	Free    any            `yaml:"free"`
	Raw     *yaml.Node     `yaml:"raw"`
	Timeout Duration       `yaml:"timeout"`
	NoTag   string
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  outer
		diags []string
	}{
		{
			name: "scalars",
			src:  "name: n\ncount: 0x10\nsmall: -3\nsize: 7\nratio: 1\non: yes\nnotag: x\n",
			want: outer{common: common{Name: "n"}, Count: 16, Small: -3, Size: 7, Ratio: 1, On: true, NoTag: "x"},
		},
		{
			name: "any scalar reads as a string",
			src:  "name: 3.10\n",
			want: outer{common: common{Name: "3.10"}},
		},
		{
			name: "null leaves the zero value",
			src:  "name:\ncount: ~\netcd: null\ntimeout:\n",
		},
		{
			name: "nested values",
			src:  "tags: [a, b]\nlimits: {nofile: 10}\netcd: {dest: /x, mode: 3}\nitems:\n  - dest: /a\n",
			want: outer{Tags: []string{"a", "b"}, Limits: map[string]int{"nofile": 10}, Etcd: &inner{Dest: "/x", Mode: 3},
				Items: []inner{{Dest: "/a"}}},
		},
		{
			name: "plain values",
			src:  "free: {a: [1, 2.5, true, null, x, 2001-12-14], b: {c: 99999999999999999999}}\n",
			want: outer{Free: map[string]any{"a": []any{1, 2.5, true, nil, "x", "2001-12-14"},
				"b": map[string]any{"c": 1e20}}},
		},
		{
			name: "merge keys: explicit wins, then the first merged mapping",
			src: "base: &b {dest: /b, mode: 1}\nother: &o {dest: /o, mode: 2}\n" +
				"x:\n  etcd: {<<: [*b, *o], mode: 3}\n",
		},
		{
			name: "type mismatches name the key path",
			src:  "count: three\nsmall: 300\nsize: -1\non: maybe\ntags: [a, [b]]\netcd: {dest: [x]}\nratio: \"1.5\"\n",
			want: outer{Tags: []string{"a", ""}, Etcd: &inner{}},
			diags: []string{
				`f.yml:1:8: "count" must be a whole number, got "three"`,
				`f.yml:2:8: "small" is out of range: 300`,
				`f.yml:3:7: "size" must not be negative, got -1`,
				`f.yml:4:5: "on" must be true or false, got "maybe"`,
				`f.yml:5:11: "tags[1]" must be a string, got a list`,
				`f.yml:6:14: "etcd.dest" must be a string, got a list`,
				`f.yml:7:8: "ratio" must be a number, got "1.5"; write 1.5 without quotes`,
			},
		},
		{
			name: "unknown keys suggest only keys not set yet",
			src:  "count: 1\ncountt: 2\netcd: {dest: /x, dset: /y}\nnme: a\n",
			want: outer{Count: 1, Etcd: &inner{Dest: "/x"}},
			diags: []string{
				`f.yml:2:1: unknown key "countt" at the top level; expected one of: free, items, limits, name, notag, on, ratio, raw, size, small, tags, timeout`,
				`f.yml:3:18: unknown key "dset" in "etcd"; expected one of: mode`,
				`f.yml:4:1: unknown key "nme" at the top level; did you mean "name"?`,
			},
		},
		{
			name:  "required keys",
			src:   "etcd: {mode: 1}\nitems: [{dest: }]\n",
			want:  outer{Etcd: &inner{Mode: 1}, Items: []inner{{}}},
			diags: []string{`f.yml:1:7: missing required key "dest" in "etcd"`, `f.yml:2:10: missing value for required key "dest" in "items[0]"`},
		},
		{
			name:  "a misspelt required key is not also reported missing",
			src:   "etcd: {dets: /x}\n",
			want:  outer{Etcd: &inner{}},
			diags: []string{`f.yml:1:8: unknown key "dets" in "etcd"; did you mean "dest"?`},
		},
		{
			name:  "duplicate keys",
			src:   "count: 1\nname: a\ncount: 2\n",
			want:  outer{Count: 1, common: common{Name: "a"}},
			diags: []string{`f.yml:3:1: duplicate key "count"; first set at line 1`},
		},
		{
			name: "aliases",
			src:  "tags: &t [a]\nfree: *t\n",
			want: outer{Tags: []string{"a"}, Free: []any{"a"}},
		},
		{
			name:  "alias cycles are refused",
			src:   "free: &a [*a]\ntags: &b [x, *b]\n",
			want:  outer{Free: []any{nil}, Tags: []string{"x", ""}},
			diags: []string{`f.yml:1:11: alias *a is used inside its own anchor`, `f.yml:2:14: alias *b is used inside its own anchor`},
		},
		{
			name:  "keys must be scalars",
			src:   "free: {[a]: 1}\n",
			want:  outer{Free: map[string]any{}},
			diags: []string{`f.yml:1:8: a key must be a plain name, got a list`},
		},
		{
			name:  "wrong shapes",
			src:   "etcd: [1]\ntags: x\nlimits: [1]\n",
			diags: []string{`f.yml:1:7: "etcd" must be a mapping, got a list`, `f.yml:2:7: "tags" must be a list, got "x"`, `f.yml:3:9: "limits" must be a mapping, got a list`},
			want:  outer{Etcd: &inner{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got outer
			var diags []string
			if strings.HasPrefix(tt.name, "merge keys") {
				var wrapper struct {
					Base  any   `yaml:"base"`
					Other any   `yaml:"other"`
					X     outer `yaml:"x"`
				}
				diags = decodeString(t, nil, tt.src, &wrapper)
				if want := (&inner{Dest: "/b", Mode: 3}); !reflect.DeepEqual(wrapper.X.Etcd, want) {
					t.Errorf("merged = %+v, want %+v", wrapper.X.Etcd, want)
				}
			} else {
				diags = decodeString(t, nil, tt.src, &got)
				got.Raw = nil
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v\nwant %+v", got, tt.want)
				}
			}
			if strings.Join(diags, "\n") != strings.Join(tt.diags, "\n") {
				t.Errorf("diags:\n%s\nwant:\n%s", strings.Join(diags, "\n"), strings.Join(tt.diags, "\n"))
			}
		})
	}
}

func TestDecodeRaw(t *testing.T) {
	var got outer
	if ds := decodeString(t, nil, "raw: {a: 1}\n", &got); ds != nil {
		t.Fatal(ds)
	}
	if got.Raw == nil || got.Raw.Kind != yaml.MappingNode || got.Raw.Line != 1 || got.Raw.Column != 6 {
		t.Errorf("raw = %+v", got.Raw)
	}
}

func TestDecodeTemplates(t *testing.T) {
	var seen []string
	d := &Decoder{OnTemplate: func(n *yaml.Node) { seen = append(seen, n.Value) }}
	var got struct {
		Etcd    inner      `yaml:"etcd"`
		Count   int        `yaml:"count"`
		Tags    StringList `yaml:"tags"`
		Timeout Duration   `yaml:"timeout"`
		Expect  Expr       `yaml:"expect"`
		Env     map[string]string
	}
	src := "etcd: {dest: '{{ a }}'}\ncount: '{{ n }}'\ntags: [x, '{{ t }}']\ntimeout: '{{ d }}'\nexpect: '\"{{\" == x'\nenv: {A: '{{ b }}'}\n"
	if ds := decodeString(t, d, src, &got); ds != nil {
		t.Fatalf("templated scalars are not errors: %v", ds)
	}
	want := []string{"{{ a }}", "{{ n }}", "{{ t }}", "{{ d }}", "{{ b }}"}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("OnTemplate saw %q, want %q", seen, want)
	}
	if got.Etcd.Dest != "" || got.Count != 0 || !reflect.DeepEqual(got.Tags, StringList{"x", ""}) || got.Timeout != 0 ||
		got.Env["A"] != "" || got.Expect.Src != `"{{" == x` {
		t.Errorf("templated values must be left zero, Expr taken as is: %+v", got)
	}

	// Without template mode the same text is literal, and converts or fails.
	got.Count = 0
	ds := decodeString(t, nil, "count: '{{ n }}'\n", &struct {
		Count *int `yaml:"count"`
	}{})
	if len(ds) != 1 || !strings.Contains(ds[0], `"count" must be a whole number, got "{{ n }}"`) {
		t.Errorf("diags = %v", ds)
	}
}

func TestDecodeOnExpr(t *testing.T) {
	var keys []string
	d := &Decoder{OnExpr: func(e *Expr, key string) { keys = append(keys, key+"="+e.Src+"@"+e.Pos.String()) }}
	var got struct {
		Checks map[string]Expr `yaml:"checks"`
		Expect Expr            `yaml:"expect"`
	}
	if ds := decodeString(t, d, "checks: {a: x > 1}\nexpect: |\n  y == 2\n", &got); ds != nil {
		t.Fatal(ds)
	}
	want := []string{"a=x > 1@f.yml:1:13", "expect=y == 2\n@f.yml:3:3"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("OnExpr got %q, want %q", keys, want)
	}
}

// TestDecodeAliasBomb checks that aliases cannot make the walk explode.
func TestDecodeAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(": &a")
		b.WriteString(string(rune('0' + i)))
		b.WriteString(" [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a")
			b.WriteString(string(rune('0' + i - 1)))
		}
		b.WriteString("]\n")
	}
	var got map[string]any
	ds := decodeString(t, nil, b.String(), &got)
	if len(ds) != 1 || !strings.Contains(ds[0], "expands to more than") {
		t.Errorf("diags = %v", ds)
	}
}

func TestDecodeErrorsOnBadTarget(t *testing.T) {
	var ds diag.Diags
	n, _ := parse("f.yml", []byte("a: 1\n"))
	(&Decoder{File: "f.yml"}).Decode(n, map[string]any{}, &ds)
	if !ds.HasErrors() {
		t.Error("a non-pointer target must be reported")
	}
}

func TestKeys(t *testing.T) {
	got := Keys(reflect.TypeOf(&outer{}))
	want := []string{"name", "count", "small", "size", "ratio", "on", "tags", "limits", "etcd", "items", "free", "raw", "timeout", "notag"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v", got)
	}
}
