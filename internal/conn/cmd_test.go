package conn

import "testing"

func TestCmdBrief(t *testing.T) {
	tests := []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"argv as it is", Cmd{Argv: []string{"etcd", "--version"}}, "etcd --version"},
		{"one-line script as it is", Cmd{Shell: "ls -1 | wc -l"}, "/bin/sh -c 'ls -1 | wc -l'"},
		{"a trailing newline is not a second line", Cmd{Shell: "true\n"}, "/bin/sh -c 'true\n'"},
		{"a script by its first line and length", Cmd{Shell: "set -e\ncd /srv\nmake\n"}, "/bin/sh -c 'set -e …' (a script of 3 lines)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.Brief(); got != tt.want {
				t.Errorf("Brief() = %q, want %q", got, tt.want)
			}
		})
	}
}
