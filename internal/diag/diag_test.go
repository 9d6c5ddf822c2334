package diag

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	cands := []string{"service", "manager", "wait", "stop", "start", "swap"}
	tests := []struct{ got, want string }{
		{"servce", `did you mean "service"?`},
		{"stpo", `did you mean "stop"?`},
		{"wiat", `did you mean "wait"?`},
		{"managr", `did you mean "manager"?`},
		{"xyz", ""},
		{"completely-different", ""},
	}
	for _, tt := range tests {
		t.Run(tt.got, func(t *testing.T) {
			if got := Suggest(tt.got, cands); got != tt.want {
				t.Errorf("Suggest(%q) = %q, want %q", tt.got, got, tt.want)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	src := Sources{"rb.yml": []byte("steps:\n  - stop: { servce: etcd }\n")}
	var ds Diags
	ds.Add(Pos{File: "rb.yml", Line: 2, Col: 13}, `unknown key "servce" in stop`, `did you mean "service"?`)
	ds.Errorf(Pos{File: "rb.yml", Line: 1, Col: 1}, "first")
	ds.Sort()
	var b bytes.Buffer
	if err := WriteText(&b, ds, src); err != nil {
		t.Fatal(err)
	}
	want := `rb.yml:1:1: first
    1 | steps:
      | ^
rb.yml:2:13: unknown key "servce" in stop; did you mean "service"?
    2 |   - stop: { servce: etcd }
      |             ^
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if !strings.Contains(ds.Err().Error(), "rb.yml:2:13") {
		t.Errorf("Err() = %v", ds.Err())
	}
}

func TestSortDedup(t *testing.T) {
	var ds Diags
	ds.Errorf(Pos{File: "b", Line: 1, Col: 1}, "x")
	ds.Errorf(Pos{File: "a", Line: 3, Col: 1}, "y")
	ds.Errorf(Pos{File: "a", Line: 3, Col: 1}, "y")
	ds.Sort()
	if len(ds) != 2 || ds[0].Pos.File != "a" {
		t.Fatalf("Sort: %v", ds)
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWriteTextControl: escape sequences in a source line or a message are
// printed escaped, the caret still under the column it names.
func TestWriteTextControl(t *testing.T) {
	src := Sources{"rb.yml": []byte("steps:\n" +
		"  - shell: \"echo \x1b[2J\x1b]0;pwned\x07\"\n" +
		"\t- name: \x1b[31mred\x1b[0m: x\n" +
		"  - name: \u202egnp.exe \xff \u009b1m\x7f\n")}
	var ds Diags
	ds.Add(Pos{File: "rb.yml", Line: 2, Col: 26}, "unknown key \"sh\x1b[8mell\"", "a detail with \x1b]52;c;ZXZpbA==\x07 in it\nand a second line")
	ds.Errorf(Pos{File: "rb.yml", Line: 3, Col: 22}, "tab kept")
	ds.Errorf(Pos{File: "rb.yml", Line: 4, Col: 23}, "bidi, invalid UTF-8, C1 and DEL")
	ds.AddSecret(Pos{File: "rb.yml", Line: 2, Col: 3}, "a secret's line is not shown", "")
	var b bytes.Buffer
	if err := WriteText(&b, ds, src); err != nil {
		t.Fatal(err)
	}
	for _, c := range b.String() {
		if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || c >= 0x80 && c < 0xa0 || c == 0x202e {
			t.Errorf("control character %U printed raw", c)
		}
	}
	golden := filepath.Join("testdata", "control.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("output differs from %s (go test -update accepts it):\n--- got\n%s\n--- want\n%s", golden, b.String(), want)
	}
}

func TestVisible(t *testing.T) {
	tests := []struct {
		in        string
		keepLines bool
		want      string
	}{
		{"plain text, ünïcode", false, "plain text, ünïcode"},
		{"a\tb", false, "a\tb"},
		{"a\nb", false, `a\nb`},
		{"a\nb", true, "a\nb"},
		{"\x1b[31m", true, `\x1b[31m`},
		{"\r\x00\x7f", false, `\r\x00\x7f`},
		{"\u009b\u202e", false, `\u009b\u202e`},
		{"bad \xff utf-8", false, `bad \xff utf-8`},
	}
	for _, tt := range tests {
		if got := Visible(tt.in, tt.keepLines); got != tt.want {
			t.Errorf("Visible(%q, %v) = %q, want %q", tt.in, tt.keepLines, got, tt.want)
		}
	}
}
