package diag

import (
	"bytes"
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
