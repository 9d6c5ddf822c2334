package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	rb := t.TempDir()
	inv := filepath.Join(rb, "inventory")
	for _, d := range []string{"staging", "both", "group_vars"} {
		if err := os.MkdirAll(filepath.Join(inv, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"prod.yml", "qa.yaml", "lab", "both.yml", "both.yaml"} {
		if err := os.WriteFile(filepath.Join(inv, f), []byte("all:\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	direct := filepath.Join(t.TempDir(), "hosts.ini")
	if err := os.WriteFile(direct, []byte("h1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want, err string
	}{
		{direct, direct, ""},
		{"prod", filepath.Join(inv, "prod.yml"), ""},
		{"qa", filepath.Join(inv, "qa.yaml"), ""},
		{"staging", filepath.Join(inv, "staging"), ""},
		{"lab", filepath.Join(inv, "lab"), ""},
		{"both", filepath.Join(inv, "both.yml"), ""},
		{"prdo", "", `inventory "prdo" not found; tried prdo, ` + filepath.Join(inv, "prdo.yml") + ", " + filepath.Join(inv, "prdo.yaml") + ", " + filepath.Join(inv, "prdo") + ` (a directory or an INI file); did you mean "prod"?`},
		{filepath.Join(rb, "nope", "x.yml"), "", "no such file or directory"},
		{"", "", "empty inventory name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.name, rb)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Resolve(%q) = %q, %v; want error %q", tt.name, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Resolve(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
}
