package systemdfacts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

func TestParse(t *testing.T) {
	text, err := os.ReadFile("testdata/show.txt")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]string{"nginx", "nosuch"}, string(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Unit{Name: "nginx", Load: "loaded", Active: "active", Sub: "running", MainPID: 4242, Since: "2026-12-07T15:04:05Z", Enabled: "enabled"}
	if f.Unit != want || f.Units["nginx"] != want {
		t.Errorf("unit = %+v", f.Unit)
	}
	if u := f.Units["nosuch"]; u.Load != "not-found" || u.MainPID != 0 || u.Since != "" {
		t.Errorf("unknown unit = %+v", u)
	}
	if _, err := Parse([]string{"a", "b", "c"}, string(text)); err == nil {
		t.Error("two blocks for three units parsed")
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]any
		want string
		err  string
	}{
		{map[string]any{"systemd_unit": "etcd"}, "etcd", ""},
		{map[string]any{"systemd_units": []any{"a", "b"}, "systemd_unit": "c"}, "a b", ""},
		{map[string]any{"systemd_units": "a"}, "", "must be a list"},
		{map[string]any{"systemd_units": []any{"a", 3}}, "", "must be a list"},
		{map[string]any{}, "", "set var systemd_unit"},
	} {
		got, err := Units(tc.vars)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want %q", tc.vars, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%v = %v, %v", tc.vars, got, err)
		}
	}
}

// Gather runs one systemctl show through the host's connection. The machines
// the suite runs on have no running systemd, so a systemctl on PATH that
// prints what systemd prints stands in for it; the command line it was given
// is checked.
func TestGatherThroughTheConnection(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "argv")
	script := "#!/bin/sh\necho \"$@\" > " + log + "\ncat " + filepath.Join(mustAbs(t, "testdata"), "show.txt") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	h := &modules.Host{Name: "web1", Conn: local.New(), Vars: map[string]any{"systemd_units": []any{"nginx", "nosuch"}}}
	f, err := Gather(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if f.Unit.MainPID != 4242 || f.Units["nosuch"].Load != "not-found" {
		t.Errorf("facts = %+v", f)
	}
	argv, _ := os.ReadFile(log)
	if got := strings.TrimSpace(string(argv)); got != "show --property=Id,LoadState,ActiveState,SubState,MainPID,ActiveEnterTimestamp,UnitFileState nginx nosuch" {
		t.Errorf("systemctl %s", got)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
