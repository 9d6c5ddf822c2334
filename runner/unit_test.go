package runner

import (
	"testing"
)

func TestSelected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tags       []string
		only, skip []string
		want       bool
	}{
		{"no flags run untagged", nil, nil, nil, true},
		{"no flags run tagged", []string{"a"}, nil, nil, true},
		{"no flags skip never", []string{"never", "debug"}, nil, nil, false},
		{"--tags picks", []string{"a"}, []string{"a"}, nil, true},
		{"--tags leaves others", []string{"b"}, []string{"a"}, nil, false},
		{"--tags leaves untagged", nil, []string{"a"}, nil, false},
		{"always runs under --tags", []string{"always"}, []string{"a"}, nil, true},
		{"never runs when one of its tags is asked for", []string{"never", "debug"}, []string{"debug"}, nil, true},
		{"never runs when asked for by name", []string{"never"}, []string{"never"}, nil, true},
		{"all is the default", []string{"a"}, []string{"all"}, nil, true},
		{"all leaves never", []string{"never"}, []string{"all"}, nil, false},
		{"tagged", []string{"a"}, []string{"tagged"}, nil, true},
		{"tagged leaves untagged", nil, []string{"tagged"}, nil, false},
		{"untagged", nil, []string{"untagged"}, nil, true},
		{"untagged leaves tagged", []string{"a"}, []string{"untagged"}, nil, false},
		{"--skip-tags wins over --tags", []string{"a", "b"}, []string{"a"}, []string{"b"}, false},
		{"--skip-tags leaves others", []string{"a"}, nil, []string{"b"}, true},
		{"--skip-tags always skips always", []string{"always"}, nil, []string{"always"}, false},
		{"--skip-tags tagged", []string{"a"}, nil, []string{"tagged"}, false},
		{"--skip-tags untagged", nil, nil, []string{"untagged"}, false},
		{"--skip-tags all keeps always", []string{"always"}, nil, []string{"all"}, true},
		{"--skip-tags all", []string{"a"}, nil, []string{"all"}, false},
	}
	for _, tt := range tests {
		if got := selected(tt.tags, tt.only, tt.skip); got != tt.want {
			t.Errorf("%s: selected(%q, --tags %q, --skip-tags %q) = %v, want %v", tt.name, tt.tags, tt.only, tt.skip, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	hosts := func(ss ...Status) map[string]*HostOutcome {
		m := map[string]*HostOutcome{}
		for i, s := range ss {
			m[string(rune('a'+i))] = &HostOutcome{Status: s}
		}
		return m
	}
	tests := []struct {
		name string
		out  Outcome
		want int
	}{
		{"all ok", Outcome{Hosts: hosts(StatusOK, StatusOK)}, 0},
		{"nothing to do", Outcome{Hosts: hosts()}, 0},
		{"a host rolled back", Outcome{Hosts: hosts(StatusOK, StatusRolledBack)}, 1},
		{"a host failed without rollback", Outcome{Hosts: hosts(StatusFailed)}, 1},
		{"a host unreachable", Outcome{Hosts: hosts(StatusUnreachable)}, 1},
		{"aborted", Outcome{Hosts: hosts(StatusOK, StatusSkipped), Aborted: true}, 1},
		{"preflight refused", Outcome{Hosts: hosts(StatusSkipped), PreflightFailed: true}, 3},
		{"preflight refused with a failed rollback", Outcome{Hosts: hosts(StatusSkipped), PreflightFailed: true, RollbackFailed: true}, 4},
		{"post failed", Outcome{Hosts: hosts(StatusOK), PostFailed: true}, 1},
		{"interrupted", Outcome{Hosts: hosts(StatusInterrupted, StatusSkipped), Interrupted: true}, 3},
		{"interrupted after a failure", Outcome{Hosts: hosts(StatusRolledBack, StatusInterrupted), Interrupted: true}, 1},
		{"a rollback failed", Outcome{Hosts: hosts(StatusRollbackFailed), RollbackFailed: true}, 4},
		{"a rollback failed while interrupted", Outcome{Hosts: hosts(StatusRollbackFailed), RollbackFailed: true, Interrupted: true}, 4},
	}
	for _, tt := range tests {
		if got := tt.out.ExitCode(); got != tt.want {
			t.Errorf("%s: exit code %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestResultMap(t *testing.T) {
	t.Parallel()
	m := resultMap(map[string]any{"rc": 2, "msg": "", "skipped": true}, true, true, "exit status 2")
	want := map[string]any{"rc": 2, "msg": "exit status 2", "skipped": true, "changed": true, "failed": true, "error": "exit status 2"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m := resultMap(nil, false, false, ""); m["msg"] != "" || m["skipped"] != false || m["error"] != "" {
		t.Errorf("empty result %v", m)
	}
	if m := resultMap(map[string]any{"msg": "kept"}, false, true, "boom"); m["msg"] != "kept" {
		t.Errorf("a module's msg was replaced: %v", m)
	}
}
