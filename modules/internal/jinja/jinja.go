// Package jinja renders the Jinja2 templates of the template module with
// github.com/ardanlabs/jinja, adding what an Ansible template expects of
// its engine beyond Jinja2's own: the filters Ansible playbooks use most
// (mandatory, ternary, bool, to_json, to_nice_json, regex_replace,
// basename, dirname, b64encode, b64decode) and inventory_hostname and
// group_names.
package jinja

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	j2 "github.com/ardanlabs/jinja"
)

// Template is a compiled template.
type Template struct {
	name string
	t    *j2.Template
}

// Compile parses src; name (the template's file) is in its errors.
func Compile(name, src string) (*Template, error) {
	t, err := j2.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Template{name: name, t: t}, nil
}

// Render renders the template with vars, which are plain data (a scope's
// Values): they are normalised through JSON first, so that every number,
// time and named type reaches the engine as the kinds it knows.
func (t *Template) Render(vars map[string]any) (string, error) {
	data, err := normalize(vars)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	if h, ok := data["host"].(map[string]any); ok {
		if _, set := data["inventory_hostname"]; !set {
			data["inventory_hostname"] = h["name"]
		}
		if _, set := data["group_names"]; !set {
			data["group_names"] = h["groups"]
		}
	}
	for name, f := range filters {
		if _, set := data[name]; !set {
			data[name] = j2.NewCallable(name, f)
		}
	}
	vals := make(map[string]j2.Value, len(data))
	for k, v := range data {
		if c, ok := v.(j2.Value); ok {
			vals[k] = c
			continue
		}
		vals[k] = j2.FromGoValue(v)
	}
	out, err := t.t.RenderValues(vals)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	return out, nil
}

// normalize copies vars through JSON, keeping integers as integers.
func normalize(vars map[string]any) (map[string]any, error) {
	b, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("the variables cannot be given to the template: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("the variables cannot be given to the template: %w", err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

type filter = func(args []j2.Value, kwargs map[string]j2.Value) (j2.Value, error)

var filters = map[string]filter{
	"mandatory": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		if len(a) == 0 || a[0].IsUndefined() {
			msg := "a mandatory value is undefined"
			if len(a) > 1 && a[1].IsString() {
				msg = a[1].AsString()
			}
			return j2.Undefined(), errors.New(msg)
		}
		return a[0], nil
	},
	"ternary": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		if len(a) < 3 {
			return j2.Undefined(), errors.New("ternary takes two values: x | ternary(if_true, if_false)")
		}
		if len(a) > 3 && a[0].IsNone() {
			return a[3], nil
		}
		if a[0].IsTruthy() {
			return a[1], nil
		}
		return a[2], nil
	},
	"bool": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		if len(a) == 0 {
			return j2.NewBool(false), nil
		}
		v := a[0]
		switch {
		case v.IsBool():
			return v, nil
		case v.IsString():
			switch strings.ToLower(strings.TrimSpace(v.AsString())) {
			case "yes", "on", "1", "true", "t", "y":
				return j2.NewBool(true), nil
			}
			return j2.NewBool(false), nil
		case v.IsInt():
			return j2.NewBool(v.AsInt() == 1), nil
		case v.IsFloat():
			return j2.NewBool(v.AsFloat() == 1), nil
		}
		return j2.NewBool(false), nil
	},
	"to_json": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		return toJSON(a, "")
	},
	"to_nice_json": func(a []j2.Value, kw map[string]j2.Value) (j2.Value, error) {
		indent := 4
		if v, ok := kw["indent"]; ok && v.IsInt() {
			indent = int(v.AsInt())
		}
		return toJSON(a, strings.Repeat(" ", indent))
	},
	"regex_replace": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		if len(a) < 2 {
			return j2.Undefined(), errors.New("regex_replace takes a pattern and a replacement")
		}
		re, err := regexp.Compile(text(a[1]))
		if err != nil {
			return j2.Undefined(), fmt.Errorf("regex_replace: %w", err)
		}
		repl := ""
		if len(a) > 2 {
			// Python writes a group as \1; Go as ${1}.
			repl = pyGroup.ReplaceAllString(text(a[2]), "$${$1}")
		}
		return j2.NewString(re.ReplaceAllString(text(a[0]), repl)), nil
	},
	"basename": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		return j2.NewString(path.Base(str(a))), nil
	},
	"dirname": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		return j2.NewString(path.Dir(str(a))), nil
	},
	"b64encode": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		return j2.NewString(base64.StdEncoding.EncodeToString([]byte(str(a)))), nil
	},
	"b64decode": func(a []j2.Value, _ map[string]j2.Value) (j2.Value, error) {
		b, err := base64.StdEncoding.DecodeString(str(a))
		if err != nil {
			return j2.Undefined(), fmt.Errorf("b64decode: %w", err)
		}
		return j2.NewString(string(b)), nil
	},
}

var pyGroup = regexp.MustCompile(`\\(\d+)`)

func str(a []j2.Value) string {
	if len(a) == 0 {
		return ""
	}
	return text(a[0])
}

// text is v as Jinja2 prints it: a string without the quotes of its repr.
func text(v j2.Value) string {
	if v.IsString() {
		return v.AsString()
	}
	return text(v)
}

func toJSON(a []j2.Value, indent string) (j2.Value, error) {
	if len(a) == 0 {
		return j2.NewString("null"), nil
	}
	var b []byte
	var err error
	if indent == "" {
		b, err = json.Marshal(goValue(a[0]))
	} else {
		b, err = json.MarshalIndent(goValue(a[0]), "", indent)
	}
	if err != nil {
		return j2.Undefined(), err
	}
	return j2.NewString(string(b)), nil
}

// goValue turns an engine value back into plain data, for to_json.
func goValue(v j2.Value) any {
	switch {
	case v.IsNone(), v.IsUndefined():
		return nil
	case v.IsBool():
		return v.AsBool()
	case v.IsInt():
		return v.AsInt()
	case v.IsFloat():
		return v.AsFloat()
	case v.IsString():
		return v.AsString()
	case v.IsList():
		l := v.AsList()
		out := make([]any, l.Len())
		for i := range l.Len() {
			out[i] = goValue(l.Get(i))
		}
		return out
	case v.IsDict():
		d := v.AsDict()
		out := make(map[string]any, d.Len())
		for _, k := range d.OrderedKeys() {
			x, _ := d.Get(k)
			out[k] = goValue(x)
		}
		return out
	}
	return text(v)
}
