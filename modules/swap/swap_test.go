package swap

import (
	"strings"
	"testing"

	"github.com/runbookhq/runbook/modules/internal/modtest"
)

var sum = strings.Repeat("ab", 32)

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"src and dest", Module{Src: "dist/etcd", Dest: "/usr/local/bin/etcd"}, "", ""},
		{"every option", Module{Src: "dist/etcd", Dest: "/usr/local/bin/etcd", Mode: 0o755, SHA256: strings.ToUpper(sum),
			Owner: "root", Group: "root", Backup: "/var/backups/etcd.prev"}, "", ""},
		{"templated", Module{Src: "dist/etcd-{{ v }}", Dest: "{{ etcd_bin }}", SHA256: "{{ sums[v] }}", Backup: "{{ etcd_bin }}.old"}, "", ""},
		{"prepare", Module{Src: "dist/etcd", Dest: "/usr/local/bin/etcd", Prepare: true}, "", ""},
		{"restore", Module{Restore: "/usr/local/bin/etcd"}, "", ""},
		{"restore with its backup", Module{Restore: "/usr/local/bin/etcd", Backup: "/var/backups/etcd.prev"}, "", ""},

		{"nothing", Module{}, "", "nothing to swap; give src and dest, or restore"},
		{"src alone", Module{Src: "dist/etcd"}, "dest", "is required with src"},
		{"dest alone", Module{Dest: "/usr/local/bin/etcd"}, "src", "is required with dest"},
		{"restore with src", Module{Restore: "/usr/local/bin/etcd", Src: "dist/etcd"}, "src", "is not used with restore"},
		{"restore with mode", Module{Restore: "/usr/local/bin/etcd", Mode: 0o755}, "mode", "is not used with restore"},
		{"restore with prepare", Module{Restore: "/usr/local/bin/etcd", Prepare: true}, "prepare", "is not used with restore, which puts back the kept file and has nothing to stage; remove prepare, or give src and dest"},
		{"prepare without src", Module{Dest: "/usr/local/bin/etcd", Prepare: true}, "src", "is required with dest"},
		{"restore with sha256", Module{Restore: "/usr/local/bin/etcd", SHA256: sum}, "sha256", "is not used with restore"},
		{"relative dest", Module{Src: "dist/etcd", Dest: "bin/etcd"}, "dest", "is relative"},
		{"dest is a folder", Module{Src: "dist/etcd", Dest: "/usr/local/bin/"}, "dest", "ends in /"},
		{"unclean dest", Module{Src: "dist/etcd", Dest: "/usr/local/../bin//etcd"}, "dest", `write "/usr/bin/etcd"`},
		{"relative restore", Module{Restore: "etcd"}, "restore", "is relative"},
		{"relative backup", Module{Src: "a", Dest: "/a", Backup: "a.prev"}, "backup", "is relative"},
		{"backup is dest", Module{Src: "a", Dest: "/usr/bin/etcd", Backup: "/usr/bin/etcd"}, "backup", "/usr/bin/etcd.runbook-prev"},
		{"short sha256", Module{Src: "a", Dest: "/a", SHA256: "abc"}, "sha256", "has 3 characters"},
		{"sha256 not hex", Module{Src: "a", Dest: "/a", SHA256: strings.Repeat("g", 64)}, "sha256", "is not hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		m          Module
		wantBackup string
	}{
		{Module{Src: "a", Dest: "/usr/bin/etcd"}, "/usr/bin/etcd.runbook-prev"},
		{Module{Restore: "/usr/bin/etcd"}, "/usr/bin/etcd.runbook-prev"},
		{Module{Src: "a", Dest: "/usr/bin/etcd", Backup: "/b"}, "/b"},
	}
	for _, tt := range tests {
		if got := tt.m.Defaults(); got.Backup != tt.wantBackup || got.Mode != 0 || got.Owner != "" {
			t.Errorf("Defaults(%+v) = %+v, want backup %s and mode and owner left to the host", tt.m, *got, tt.wantBackup)
		}
	}
}
