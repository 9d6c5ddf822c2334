package inventory

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseHostEntry(t *testing.T) {
	tests := []struct {
		in    string
		names []string
		port  int
		err   string
	}{
		{"web1", []string{"web1"}, 0, ""},
		{"web1:2222", []string{"web1"}, 2222, ""},
		{"etcd[1:3].example", []string{"etcd1.example", "etcd2.example", "etcd3.example"}, 0, ""},
		{"etcd[1:3].example:2379", []string{"etcd1.example", "etcd2.example", "etcd3.example"}, 2379, ""},
		{"10.0.0.[1:3]", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, 0, ""},
		{"db[01:03]", []string{"db01", "db02", "db03"}, 0, ""},
		{"db[008:010]", []string{"db008", "db009", "db010"}, 0, ""},
		{"db[:2]", []string{"db0", "db1", "db2"}, 0, ""},
		{"n[1:9:4]", []string{"n1", "n5", "n9"}, 0, ""},
		{"[a:c]-x", []string{"a-x", "b-x", "c-x"}, 0, ""},
		{"z[y:B]", []string{"zy", "zz", "zA", "zB"}, 0, ""},
		{"r[1:2]-[a:b]", []string{"r1-a", "r1-b", "r2-a", "r2-b"}, 0, ""},
		{"[fe80::1]:2222", []string{"fe80::1"}, 2222, ""},
		{"fe80::1", []string{"fe80::1"}, 0, ""},
		{"[1:2]:22", []string{"1", "2"}, 22, ""},
		{"web1:", nil, 0, `ends in ":"`},
		{"web1:99999", nil, 0, `port in "web1:99999" is out of range`},
		{"---", nil, 0, "YAML document marker"},
		{"", nil, 0, "empty host name"},
		{"db[3:1]", nil, 0, `host "db[3:1]": invalid range [3:1]: begin 3 is greater than end 1`},
		{"db[01:3]", nil, 0, `host "db[01:3]": invalid range [01:3]: begin "01" has leading zeros, so end must have as many digits (2)`},
		{"db[a:3]", nil, 0, `want numbers (such as 1:3, 01:10) or single letters (a:f)`},
		{"db[1:2:3:4]", nil, 0, "want begin:end or begin:end:step"},
		{"db[1:]", nil, 0, "no end value"},
		{"db[1:3", nil, 0, `range "[1:3" has no closing "]"`},
		{"db[1:5:x]", nil, 0, `step "x" is not a positive integer`},
		{"db[0:999999999]", nil, 0, "range has more than 100000 values"},
		{"a[0:999]b[0:999]", nil, 0, "ranges expand to more than 100000 hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := parseHostEntry(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseHostEntry(%q) = %v, %v; want error %q", tt.in, e, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.names, tt.names) || e.port != tt.port {
				t.Errorf("parseHostEntry(%q) = %v :%d, want %v :%d", tt.in, e.names, e.port, tt.names, tt.port)
			}
		})
	}
}

func TestPyLiteral(t *testing.T) {
	tests := []struct {
		in   string
		want any
		ok   bool
	}{
		{"22", 22, true},
		{"-7", -7, true},
		{"+7", 7, true},
		{"0", 0, true},
		{"00", 0, true},
		{"022", nil, false},
		{"0x1F", 31, true},
		{"0o17", 15, true},
		{"0b101", 5, true},
		{"1_000", 1000, true},
		{"1__0", nil, false},
		{"_1", nil, false},
		{"1.5", 1.5, true},
		{".5", 0.5, true},
		{"5.", 5.0, true},
		{"1e3", 1000.0, true},
		{"-2.5e-1", -0.25, true},
		{"1j", nil, false},
		{"True", true, true},
		{"False", false, true},
		{"None", nil, true},
		{"true", nil, false},
		{"yes", nil, false},
		{"'22'", "22", true},
		{`"a b"`, "a b", true},
		{`'it\'s'`, "it's", true},
		{`"tab\there"`, "tab\there", true},
		{`r"a\nb"`, `a\nb`, true},
		{`b'bytes'`, "bytes", true},
		{`u"\u00e9\x41\101"`, "éAA", true},
		{`'a' "b"`, "ab", true},
		{`'''tri'ple'''`, "tri'ple", true},
		{`f"x"`, nil, false},
		{`'unclosed`, nil, false},
		{"[1, 'a', [True]]", []any{1, "a", []any{true}}, true},
		{"[1, 2,]", []any{1, 2}, true},
		{"(1, 2)", []any{1, 2}, true},
		{"(1,)", []any{1}, true},
		{"()", []any{}, true},
		{"(5)", 5, true},
		{"{1, 2}", []any{1, 2}, true},
		{"{}", map[string]any{}, true},
		{"{'a': 1, 2: [3], None: 'n', True: 1.5}", map[string]any{"a": 1, "2": []any{3}, "null": "n", "true": 1.5}, true},
		{"{'a': 1,}", map[string]any{"a": 1}, true},
		{"{[1]: 2}", nil, false},
		{"23 # comment", 23, true},
		{"  42", 42, true},
		{"foo # comment", nil, false},
		{"pool.ntp.org", nil, false},
		{"10.0.0.1", nil, false},
		{"1.2.3", nil, false},
		{"/usr/bin/python3", nil, false},
		{"", nil, false},
		{"[1, 2", nil, false},
		{"1 2", nil, false},
		{"--5", nil, false},
		{"99999999999999999999", nil, false},
		{"inf", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := pyLiteral(tt.in)
			if ok != tt.ok || ok && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pyLiteral(%q) = %#v, %v; want %#v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestShlexSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"host a=1 b=2", []string{"host", "a=1", "b=2"}, false},
		{`host msg="two words" x='y z'`, []string{"host", "msg=two words", "x=y z"}, false},
		{`host a="say \"hi\"" b='it\s'`, []string{"host", `a=say "hi"`, `b=it\s`}, false},
		{`host a=b\ c`, []string{"host", "a=b c"}, false},
		{"host a=1 # comment b=2", []string{"host", "a=1"}, false},
		{"host pass=ab#cd", []string{"host", "pass=ab"}, false},
		{`host p="a#b"`, []string{"host", "p=a#b"}, false},
		{`host e=''`, []string{"host", "e="}, false},
		{`host ''`, []string{"host", ""}, false},
		{"\thost\t a=1 ", []string{"host", "a=1"}, false},
		{`host a="open`, nil, true},
		{`host a=b\`, nil, true},
	}
	for _, tt := range tests {
		toks, err := shlexSplit(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("shlexSplit(%q) error = %v", tt.in, err)
			continue
		}
		var got []string
		for _, tk := range toks {
			got = append(got, tk.text)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("shlexSplit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	toks, _ := shlexSplit(`  web1 msg="x y"`)
	if toks[0].start != 2 || toks[1].start != 7 || toks[1].end != 16 {
		t.Errorf("offsets: %+v", toks)
	}
}

func TestPyFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{1, "1.0"},
		{1.5, "1.5"},
		{-0.25, "-0.25"},
		{1e16, "1e+16"},
		{1.5e-5, "1.5e-05"},
		{123456789012345678, "1.2345678901234568e+17"},
		{0.0001, "0.0001"},
		{1e15, "1000000000000000.0"},
		{math.Inf(1), "inf"},
	}
	for _, tt := range tests {
		if got := pyFloat(tt.f); got != tt.want {
			t.Errorf("pyFloat(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestPyRepr(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{"plain", "plain"},
		{[]any{"a", 1, true, nil, 1.0}, "['a', 1, True, None, 1.0]"},
		{map[string]any{"b": "it's", "a": "x\ny"}, `{'a': 'x\ny', 'b': "it's"}`},
		{[]any{`both ' and "`}, `['both \' and "']`},
	}
	for _, tt := range tests {
		if got := pyStr(tt.v); got != tt.want {
			t.Errorf("pyStr(%#v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestYAML11Plain(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"", nil}, {"~", nil}, {"null", nil}, {"Null", nil}, {"nil", "nil"},
		{"yes", true}, {"No", false}, {"ON", true}, {"off", false}, {"True", true}, {"FALSE", false}, {"y", "y"}, {"tRue", "tRue"},
		{"22", 22}, {"-3", -3}, {"+4", 4}, {"1_000", 1000}, {"0755", 493}, {"0b101", 5}, {"0x1F", 31}, {"1:30", 90}, {"0", 0},
		{"08", "08"}, {"0o17", "0o17"}, {"99999999999999999999", "99999999999999999999"},
		{"1.5", 1.5}, {"-1.5", -1.5}, {".5", 0.5}, {"1.", 1.0}, {"1.0e+3", 1000.0}, {"1e3", "1e3"}, {"1.0e3", "1.0e3"}, {"1_0.5", 10.5},
		{"3.5.17", "3.5.17"}, {"2001-12-14", "2001-12-14"}, {"10.0.0.1", "10.0.0.1"}, {"1:30.5", 90.5},
	}
	for _, tt := range tests {
		if got := yaml11Plain(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("yaml11Plain(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{".inf", "-.Inf", ".NaN"} {
		f, ok := yaml11Plain(in).(float64)
		if !ok || !math.IsInf(f, 0) && !math.IsNaN(f) {
			t.Errorf("yaml11Plain(%q) = %v", in, yaml11Plain(in))
		}
	}
}
