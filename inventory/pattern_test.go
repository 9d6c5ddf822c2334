package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	inv := mustLoad(t, "testdata/patterns.yml")
	every := []string{"lonely", "etcd-1", "etcd-2", "etcd-3", "web1", "web2", "web10", "db1", "fe80::1"}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"all", every},
		{"*", every},
		{"etcd", []string{"etcd-1", "etcd-2", "etcd-3"}},
		{"web", []string{"web1", "web2", "web10"}},
		{"canary", []string{"web2"}},
		{"ungrouped", []string{"lonely"}},
		{"etcd-2", []string{"etcd-2"}},
		{"fe80::1", []string{"fe80::1"}},
		{"web*", []string{"web1", "web2", "web10"}},
		{"web?", []string{"web1", "web2"}},
		{"etcd-[!2]", []string{"etcd-1", "etcd-3"}},
		{"etcd-[!13]", []string{"etcd-2"}},
		{"d*", []string{"etcd-1", "web1", "db1", "fe80::1"}},
		{`~web\d+`, []string{"web1", "web2", "web10"}},
		{`~web[0-9]$`, []string{"web1", "web2"}},
		{"~can", []string{"web2"}},
		{"etcd:web", []string{"etcd-1", "etcd-2", "etcd-3", "web1", "web2", "web10"}},
		{"web,etcd", []string{"etcd-1", "etcd-2", "etcd-3", "web1", "web2", "web10"}},
		{" web , etcd-2 ", []string{"etcd-2", "web1", "web2", "web10"}},
		{"etcd:&dc_east", []string{"etcd-1"}},
		{"etcd:!etcd-2", []string{"etcd-1", "etcd-3"}},
		{"!etcd", []string{"lonely", "web1", "web2", "web10", "db1", "fe80::1"}},
		{"&dc_east", []string{"etcd-1", "web1", "db1"}},
		{"!web:&dc_east", []string{"etcd-1", "db1"}},
		{"web:!canary:&dc_east", []string{"web1"}},
		{"!canary,web,&dc_east,etcd", []string{"etcd-1", "web1"}},
		{"etcd[0]", []string{"etcd-1"}},
		{"etcd[-1]", []string{"etcd-3"}},
		{"etcd[1:]", []string{"etcd-2", "etcd-3"}},
		{"etcd[0:1]", []string{"etcd-1", "etcd-2"}},
		{"etcd[1:9]", []string{"etcd-2", "etcd-3"}},
		{"etcd[1]:web[0]", []string{"etcd-2", "web1"}},
		{"web*[0]", []string{"web1"}},
		{"db:empty", []string{"db1", "fe80::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			hosts, err := inv.Select(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(hosts); !slices.Equal(got, tt.want) {
				t.Errorf("Select(%q) = %v, want %v", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	inv := mustLoad(t, "testdata/patterns.yml")
	const groups = " (groups: all, canary, db, dc_east, empty, etcd, ungrouped, web)"
	tests := []struct {
		pattern string
		want    string
		term    string
	}{
		{"etdc", `host pattern "etdc": "etdc" matches no host or group; did you mean "etcd"?` + groups, "etdc"},
		{"etcd:!etcd-9", `host pattern "etcd:!etcd-9": "etcd-9" matches no host or group; did you mean "etcd-1"?` + groups, "etcd-9"},
		{"etcd:&wbe", `host pattern "etcd:&wbe": "wbe" matches no host or group; did you mean "web"?` + groups, "wbe"},
		{"zzz*", `host pattern "zzz*": "zzz*" matches no host or group` + groups, "zzz*"},
		{"etcd:&web", `host pattern "etcd:&web" selects no hosts` + groups, ""},
		{"empty", `host pattern "empty" selects no hosts` + groups, ""},
		{"", `host pattern "": the pattern is empty`, ""},
		{" , ", `host pattern " , ": the pattern is empty`, ""},
		{"etcd-[13]", `host pattern "etcd-[13]": "etcd-[13]" matches no host or group; did you mean "etcd"?` + groups, "etcd-[13]"}, // a subscript, not a glob set
		{"etcd[5]", `host pattern "etcd[5]": "etcd[5]": index 5 is out of range (3 hosts)`, ""},
		{"~web(", "host pattern \"~web(\": invalid regular expression \"web(\": error parsing regexp: missing closing ): `^(?:web()`", ""},
		{"etcd:!", `host pattern "etcd:!": "!" names nothing`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			hosts, err := inv.Select(tt.pattern)
			if err == nil {
				t.Fatalf("Select(%q) = %v, want an error", tt.pattern, hostNames(hosts))
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Term != tt.term || pe.Pattern != tt.pattern {
				t.Errorf("PatternError = %+v", pe)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	inv := mustLoad(t, "testdata/patterns.yml")
	dir := t.TempDir()
	retry := filepath.Join(dir, "upgrade.retry")
	if err := os.WriteFile(retry, []byte("web10\n\n  etcd-2  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	all, _ := inv.Select("all")
	etcdWeb, _ := inv.Select("etcd:web")
	tests := []struct {
		name    string
		hosts   []*Host
		pattern string
		want    []string
		err     string
	}{
		{"group", etcdWeb, "web", []string{"web1", "web2", "web10"}, ""},
		{"host", etcdWeb, "etcd-3", []string{"etcd-3"}, ""},
		{"exclusion only", etcdWeb, "!dc_east", []string{"etcd-2", "etcd-3", "web2", "web10"}, ""},
		{"keeps the given order", []*Host{inv.hostByName["web2"], inv.hostByName["etcd-1"]}, "all", []string{"web2", "etcd-1"}, ""},
		{"file", all, "@" + retry, []string{"etcd-2", "web10"}, ""},
		{"file and pattern", all, "@" + retry + ",lonely", []string{"lonely", "etcd-2", "web10"}, ""},
		{"nothing left", etcdWeb, "db", nil, `limit "db" selects no hosts`},
		{"empty", etcdWeb, "", nil, `limit "": the pattern is empty`},
		{"typo", etcdWeb, "wbe", nil, `limit "wbe": "wbe" matches no host or group; did you mean "web"?`},
		{"missing file", all, "@" + filepath.Join(dir, "nope"), nil, "cannot read limit file " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"directory", all, "@" + dir, nil, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inv.Limit(tt.hosts, tt.pattern)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Limit(%q) = %v, %v; want error %q", tt.pattern, hostNames(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := hostNames(got); !slices.Equal(names, tt.want) {
				t.Errorf("Limit(%q) = %v, want %v", tt.pattern, names, tt.want)
			}
		})
	}
}

func TestSplitPattern(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a:b", []string{"a", "b"}},
		{"a,b:c", []string{"a", "b:c"}},
		{"a:&b:!c", []string{"a", "&b", "!c"}},
		{"etcd[1:2]:web", []string{"etcd[1:2]", "web"}},
		{"fe80::1", []string{"fe80::1"}},
		{"!fe80::1", []string{"!fe80::1"}},
		{" a , , b ", []string{"a", "b"}},
		{"a b", []string{"a", "b"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitPattern(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitPattern(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob, name string
		want       bool
	}{
		{"web*", "web10", true},
		{"web*", "aweb", false},
		{"w?b", "web", true},
		{"w?b", "weeb", false},
		{"[ab]1", "b1", true},
		{"[!ab]1", "b1", false},
		{"[!ab]1", "c1", true},
		{"a[", "a[", true},
		{"a.b", "axb", false},
		{"ê*", "école", false},
		{"é*", "étude", true},
		{`[\]x`, `\x`, true},
		{"[^a]", "^", true},
	}
	for _, tt := range tests {
		re, err := globRegexp(tt.glob)
		if err != nil {
			t.Errorf("globRegexp(%q): %v", tt.glob, err)
			continue
		}
		if got := re.MatchString(tt.name); got != tt.want {
			t.Errorf("glob %q on %q = %v, want %v", tt.glob, tt.name, got, tt.want)
		}
	}
}
