package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseExtraVars(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vars.yml", "version: 3.5.17\nport: 2379\nflags: {a: 1}\nenabled: yes\n")
	write("vars.json", `{"port": 2380, "list": [1, "two"]}`)
	write("list.yml", "- a\n- b\n")
	write("empty.yml", "")
	write("bad.yml", "a: [\n")
	write("vault.yml", "$ANSIBLE_VAULT;1.1;AES256\n")
	tests := []struct {
		name string
		args []string
		want map[string]any
		err  string
	}{
		{"one pair", []string{"version=3.5.17"}, map[string]any{"version": "3.5.17"}, ""},
		{"values stay strings", []string{"port=2379 enabled=true"}, map[string]any{"port": "2379", "enabled": "true"}, ""},
		{"quotes", []string{`msg="two words" other='x y' raw=a"b c"`}, map[string]any{"msg": "two words", "other": "x y", "raw": `a"b c"`}, ""},
		{"equals in value", []string{"url=http://x/?a=b"}, map[string]any{"url": "http://x/?a=b"}, ""},
		{"escapes", []string{`msg=a\nb`}, map[string]any{"msg": "a\nb"}, ""},
		{"template kept whole", []string{`v={{ a | default(1) }}`}, map[string]any{"v": "{{ a | default(1) }}"}, ""},
		{"empty value", []string{"a="}, map[string]any{"a": ""}, ""},
		{"yaml file", []string{"@vars.yml"}, map[string]any{"version": "3.5.17", "port": 2379, "flags": map[string]any{"a": 1}, "enabled": true}, ""},
		{"json file", []string{"@vars.json"}, map[string]any{"port": 2380, "list": []any{1, "two"}}, ""},
		{"json literal", []string{`{"a": 1, "b": {"c": [true]}}`}, map[string]any{"a": 1, "b": map[string]any{"c": []any{true}}}, ""},
		{"yaml flow literal", []string{"{a: x, b: 2}"}, map[string]any{"a": "x", "b": 2}, ""},
		{"later wins, maps replaced", []string{"@vars.yml", "port=1", `{"flags": {"b": 2}}`}, map[string]any{"version": "3.5.17", "port": "1", "flags": map[string]any{"b": 2}, "enabled": true}, ""},
		{"empty args skipped", []string{"", "a=1"}, map[string]any{"a": "1"}, ""},
		{"none", nil, map[string]any{}, ""},
		{"not a pair", []string{"verbose"}, nil, `-e "verbose": "verbose" is not name=value; want name=value pairs, @file or a YAML/JSON mapping`},
		{"no name", []string{"=x"}, nil, `"=x" is not name=value`},
		{"unbalanced quote", []string{`a="x`}, nil, `-e "a=\"x": unbalanced " quote`},
		{"path without @", []string{"./vars.yml"}, nil, `-e "./vars.yml": to read a file, prefix its name with @: -e @./vars.yml`},
		{"missing file", []string{"@nope.yml"}, nil, "-e @nope.yml: cannot read " + filepath.Join(dir, "nope.yml") + ": no such file or directory"},
		{"list file", []string{"@list.yml"}, nil, filepath.Join(dir, "list.yml") + ":1:1: extra vars must be a mapping of names to values, got a list"},
		{"empty file", []string{"@empty.yml"}, nil, "extra vars must be a mapping of names to values, got nothing"},
		{"bad yaml", []string{"@bad.yml"}, nil, filepath.Join(dir, "bad.yml") + ":2: invalid YAML"},
		{"vault", []string{"@vault.yml"}, nil, "cannot decrypt the file: not valid vault data: nothing after the header"},
		{"list literal", []string{"[1, 2]"}, nil, `-e "[1, 2]": extra vars must be a mapping, got a list`},
		{"bad literal", []string{"{a: "}, nil, `-e "{a: ": invalid YAML: did not find expected node content`},
		{"only @", []string{"@"}, nil, "a file name must follow the @"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExtraVars(tt.args, dir)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseExtraVars(%q) = %v, %v; want error %q", tt.args, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseExtraVars(%q) = %#v, want %#v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseExtraVarsAbsolute(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v.yml")
	if err := os.WriteFile(p, []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseExtraVars([]string{"@" + p}, "elsewhere")
	if err != nil || got["a"] != 1 {
		t.Errorf("absolute @file: %v, %v", got, err)
	}
}
