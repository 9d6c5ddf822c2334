package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

func TestRenderNode(t *testing.T) {
	src := `a: '{{ s }}'
b: '{{ i }}'
c: '{{ l }}'
d: '{{ m }}'
e: '{{ nil }}'
f: '{{ f }}'
g: plain text
h: &x ['{{ s }}', '{{ empty }}']
i: *x
j: '{{ numstr }}'
k: '{{ d }}'
`
	values := map[string]any{
		"{{ s }}":      "hello",
		"{{ i }}":      42,
		"{{ l }}":      []any{"x", 2},
		"{{ m }}":      map[string]any{"z": true, "y": []string{"q"}},
		"{{ nil }}":    nil,
		"{{ f }}":      1.5,
		"{{ empty }}":  "",
		"{{ numstr }}": "2379",
		"{{ d }}":      90 * time.Second,
	}
	n, ds := Parse("f.yml", []byte(src))
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	var seen []diag.Pos
	out, err := RenderNode(n, func(s string, pos diag.Pos) (any, error) {
		seen = append(seen, pos)
		return values[s], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		A string         `yaml:"a"`
		B int            `yaml:"b"`
		C []any          `yaml:"c"`
		D map[string]any `yaml:"d"`
		E *string        `yaml:"e"`
		F float64        `yaml:"f"`
		G string         `yaml:"g"`
		H []string       `yaml:"h"`
		I []string       `yaml:"i"`
		J int            `yaml:"j"`
		K arg.Duration   `yaml:"k"`
	}
	var dds diag.Diags
	(&arg.Decoder{File: "f.yml"}).Decode(out, &got, &dds)
	if dds.HasErrors() {
		t.Fatal(dds.Err())
	}
	if got.A != "hello" || got.B != 42 || len(got.C) != 2 || got.C[1] != 2 || got.D["z"] != true ||
		got.E != nil || got.F != 1.5 || got.G != "plain text" || got.H[0] != "hello" || got.H[1] != "" ||
		got.I[0] != "hello" || got.J != 2379 || got.K.Std() != 90*time.Second {
		t.Errorf("rendered = %+v", got)
	}
	// Rendered nodes keep the template's position; aliases render once.
	if c := out.Content[5]; c.Kind != yaml.SequenceNode || c.Line != 3 || c.Column != 4 || c.Content[0].Line != 3 {
		t.Errorf("list node = %+v", c)
	}
	if len(seen) != 10 {
		t.Errorf("render called %d times: %v", len(seen), seen)
	}
	// The source node is left alone.
	if n.Content[1].Value != "{{ s }}" {
		t.Errorf("RenderNode changed its input: %q", n.Content[1].Value)
	}
}

func TestRenderNodeErrors(t *testing.T) {
	n, _ := Parse("f.yml", []byte("a: '{{ x }}'\n"))
	boom := errors.New("boom")
	if _, err := RenderNode(n, func(string, diag.Pos) (any, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the render error", err)
	}
	_, err := RenderNode(n, func(string, diag.Pos) (any, error) { return make(chan int), nil })
	if err == nil || !strings.Contains(err.Error(), "cannot use a value of type chan int") {
		t.Errorf("err = %v", err)
	}
	cyc, _ := Parse("f.yml", []byte("a: &a [*a]\n"))
	if _, err := RenderNode(cyc, func(s string, _ diag.Pos) (any, error) { return s, nil }); err == nil {
		t.Error("an alias inside its own anchor must be an error")
	}
}
