package inventory

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzSelect feeds arbitrary host patterns (and --limit values) to the pattern
// parser and evaluator: they may fail, never panic, and a success holds only
// hosts of the inventory, each once, in inventory order.
func FuzzSelect(f *testing.F) {
	for _, s := range []string{
		"all", "*", "etcd", "etcd:web", "web,etcd", "etcd:&dc_east", "etcd:!etcd-2", "!etcd",
		"&dc_east", "web*", "etcd-?", "etcd-[!2]", "~web\\d+", "~(", "etcd[0]", "etcd[-1]",
		"etcd[1:]", "etcd[9]", "fe80::1", "a:b:c,d", "[", "]", "~", "!", "&", ":", ",", "@x",
		"etcd[1-2]", "web[", "\x00", "é*", "~é", "etcd:!", "[[]]", "~[a-",
	} {
		f.Add(s)
	}
	inv := mustLoad(f, "testdata/patterns.yml")
	f.Fuzz(func(t *testing.T, pattern string) {
		hosts, err := inv.Select(pattern)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		last := -1
		for _, h := range hosts {
			if got, ok := inv.Host(h.Name); !ok || got != h {
				t.Fatalf("host %q not from the inventory", h.Name)
			}
			if h.index <= last {
				t.Fatalf("Select(%q) not in inventory order: %v", pattern, hostNames(hosts))
			}
			last = h.index
		}
		if strings.Contains(pattern, "@") {
			return // @file reads the file system
		}
		if _, err := inv.Limit(hosts, pattern); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// FuzzParseINI loads arbitrary INI inventories: errors are fine, panics and
// errors without a position are not.
func FuzzParseINI(f *testing.F) {
	for _, s := range []string{
		"h1\n[g]\nh2 a=1 b='x y'\n[g:vars]\nv=[1, {'a': None}]\n[p:children]\ng\n",
		"[a:children]\nb\n[b:children]\na\n",
		"web[01:10:2].example:2222 ansible_become=True\n",
		"[g:vars]\nx=1\n", "[g:bad]\n", "[ x ]\n", "h \"unclosed\n", "h a\\", "---\n", "h:\n",
		"h x=\"\\u00e9\" y=0x1F z=1_0 w=(1,)\n", "[g]\nh[a:Z]\n", "[g]\nh[0:99999999]\n",
		"\ufeffh\r\n[g]\r\nh2\r\n", "h k='''a'''\n", "h k={1:{2:{3:[4]}}}\n", "h k=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		p := filepath.Join(dir, "hosts.ini")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		inv, ds := Load(p)
		for _, d := range ds {
			if d.Pos.File == "" {
				t.Fatalf("diagnostic without a file: %v", d)
			}
		}
		if ds.HasErrors() {
			return
		}
		var b bytes.Buffer
		if err := inv.WriteList(&b); err != nil {
			t.Fatal(err)
		}
		if err := inv.WriteGraphVars(&b, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzPyLiteral checks that the Python literal reader never panics and never
// takes a prefix of its input for the whole.
func FuzzPyLiteral(f *testing.F) {
	for _, s := range []string{"22", "'a'", "[1, (2,), {3: 4}]", "{'a'", "0x", "1e", "'\\x4'", "r'\\'", "u'\\U0010ffff'", "'\\777'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := pyLiteral(s)
		if !ok && v != nil {
			t.Fatalf("pyLiteral(%q) = %v with ok false", s, v)
		}
	})
}
