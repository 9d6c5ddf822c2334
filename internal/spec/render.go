package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules/arg"
)

// RenderNode returns a deep copy of n in which every templated string scalar
// (one containing "{{") is replaced by what render returns for it. pos is the
// scalar's line and column (File is left empty: the node does not know it).
// A rendered list or map becomes a sequence or mapping node; every new node
// keeps the position of the scalar it replaces, so that errors found when the
// copy is decoded point at the template. Aliases are expanded in the copy.
//
// A rendered string reads like a plain YAML scalar, so "2379" fills an integer
// argument, as it would have had it been written without a template. Render
// may return the string unchanged for a scalar that is not to be rendered.
func RenderNode(n *yaml.Node, render func(s string, pos diag.Pos) (any, error)) (*yaml.Node, error) {
	r := &renderer{render: render, done: map[*yaml.Node]*yaml.Node{}, active: map[*yaml.Node]bool{}}
	return r.copy(n)
}

// renderCompiled renders the templates in n that the loader compiled, found
// by their position in file; any other string is literal text. A template
// for which wait reports true (nil: none) is left as it is written, and its
// position is added to waiting: before a run, the templates that read what
// only the run knows.
func renderCompiled(n *yaml.Node, file string, templates map[diag.Pos]*eval.Template, scope *eval.Scope,
	wait func(*eval.Template) bool, waiting map[diag.Pos]bool) (*yaml.Node, error) {
	return RenderNode(n, func(str string, pos diag.Pos) (any, error) {
		pos.File = file
		t := templates[pos]
		switch {
		case t == nil:
			return str, nil
		case wait != nil && wait(t):
			waiting[pos] = true
			return str, nil
		}
		return t.Render(scope)
	})
}

type renderer struct {
	render func(string, diag.Pos) (any, error)
	// done memoizes copies of anchored nodes, so that aliases share one copy
	// rather than multiplying the tree.
	done   map[*yaml.Node]*yaml.Node
	active map[*yaml.Node]bool
}

func (r *renderer) copy(n *yaml.Node) (*yaml.Node, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown anchor %q", n.Line, n.Value)
		}
		if c, ok := r.done[n.Alias]; ok {
			return c, nil
		}
		if r.active[n.Alias] {
			return nil, fmt.Errorf("line %d: alias *%s is used inside its own anchor", n.Line, n.Value)
		}
		r.active[n.Alias] = true
		c, err := r.copy(n.Alias)
		delete(r.active, n.Alias)
		if err != nil {
			return nil, err
		}
		r.done[n.Alias] = c
		return c, nil
	}
	if c, ok := r.done[n]; ok {
		return c, nil // an anchor already copied
	}
	if arg.IsTemplateScalar(n) {
		pos := diag.Pos{Line: n.Line, Col: n.Column}
		v, err := r.render(n.Value, pos)
		if err != nil {
			return nil, err
		}
		out, err := valueNode(v, n.Line, n.Column, 0)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n.Line, n.Value, err)
		}
		return out, nil
	}
	c := *n
	c.Alias = nil
	if n.Anchor != "" {
		if r.active[n] {
			return nil, fmt.Errorf("line %d: anchor &%s is used inside itself", n.Line, n.Anchor)
		}
		r.active[n] = true
		defer delete(r.active, n)
	}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			cc, err := r.copy(child)
			if err != nil {
				return nil, err
			}
			c.Content[i] = cc
		}
	}
	if n.Anchor != "" {
		r.done[n] = &c
	}
	return &c, nil
}

// valueNode builds the node for a rendered value.
func valueNode(v any, line, col, depth int) (*yaml.Node, error) {
	if depth > 64 {
		return nil, fmt.Errorf("value is nested too deeply")
	}
	scalar := func(tag, text string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: text, Line: line, Column: col}
	}
	switch x := v.(type) {
	case nil:
		return scalar("!!null", ""), nil
	case string:
		n := scalar("", x)
		// Read it as plain YAML would, but never as null: an empty rendered
		// value is an empty string, not a missing one.
		if n.ShortTag() == "!!null" || n.ShortTag() == "!!merge" {
			n.Tag = "!!str"
		}
		return n, nil
	case time.Duration:
		return scalar("!!str", x.String()), nil
	case time.Time:
		return scalar("!!str", x.Format(time.RFC3339Nano)), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(rv.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return scalar("!!int", strconv.FormatUint(rv.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		switch {
		case math.IsNaN(f):
			return scalar("!!float", ".nan"), nil
		case math.IsInf(f, 1):
			return scalar("!!float", ".inf"), nil
		case math.IsInf(f, -1):
			return scalar("!!float", "-.inf"), nil
		}
		return scalar("!!float", strconv.FormatFloat(f, 'g', -1, 64)), nil
	case reflect.String:
		return valueNode(rv.String(), line, col, depth)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return scalar("!!null", ""), nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: line, Column: col}
		for i := 0; i < rv.Len(); i++ {
			c, err := valueNode(rv.Index(i).Interface(), line, col, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return scalar("!!null", ""), nil
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line, Column: col}
		for _, k := range keys {
			c, err := valueNode(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface(), line, col, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, scalar("!!str", k), c)
		}
		return n, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return scalar("!!null", ""), nil
		}
		return valueNode(rv.Elem().Interface(), line, col, depth+1)
	}
	// Structs (such as a whole `host`) become what their JSON form says.
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot use a value of type %T here", v)
	}
	var plain any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // json.Number is a string, which reads back as !!int or !!float
	if err := dec.Decode(&plain); err != nil {
		return nil, fmt.Errorf("cannot use a value of type %T here", v)
	}
	return valueNode(plain, line, col, depth+1)
}
