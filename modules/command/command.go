// Package command is the command module: it runs one program on the host without
// a shell, so no value from vars can ever turn into shell syntax.
package command

import (
	"context"
	"errors"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/runcmd"
)

func init() {
	modules.Register(modules.Info{
		Name: "command",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "run a program on the host, without a shell",
			Description: `Runs cmd on the host and fails when it exits non-zero. The command is a
list of words, or one string split into words as a shell would split it
(quotes respected), but no shell ever sees it: $VARS, globs, pipes and
redirections are passed as they are. Use the shell module when you need them.

creates and removes make the step idempotent, as in Ansible: the command is
skipped when the creates path exists, or when the removes path does not. The
result has rc, stdout and stderr (trailing newlines cut), skipped and msg.`,
			Example: `- name: record the running version
  command:
    cmd: /usr/local/bin/etcd --version
  register: etcd_version
- name: defragment the member
  command:
    argv: [etcdctl, --endpoints, 'http://127.0.0.1:2379', defrag]
    env: { ETCDCTL_API: "3" }
- name: unpack the release once
  command:
    cmd: tar -xzf /tmp/etcd.tar.gz -C /opt/etcd
    creates: /opt/etcd/etcd`,
		},
	})
}

// Module holds the command module's arguments.
type Module struct {
	Cmd     arg.Argv          `yaml:"cmd" doc:"program and arguments: one string split into words, or a list"`
	Argv    []string          `yaml:"argv" doc:"program and arguments as a list, each word as it is (instead of cmd)"`
	Chdir   string            `yaml:"chdir" doc:"folder on the host to run in"`
	Env     map[string]string `yaml:"env" doc:"environment variables added for the command"`
	Creates string            `yaml:"creates" doc:"skip the command when this path exists on the host"`
	Removes string            `yaml:"removes" doc:"skip the command when this path does not exist on the host"`
	Stdin   string            `yaml:"stdin" doc:"text written, as it is, to the command's standard input"`
}

// Defaults returns the arguments as Run sees them; command has no defaults.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate wants exactly one of cmd and argv, not empty, and environment names
// a process can receive.
func (m *Module) Validate() error {
	switch {
	case m.Cmd != nil && m.Argv != nil:
		return &modules.FieldError{Field: "argv", Msg: "cmd is given too; give the command once, as cmd or as argv"}
	case m.Cmd == nil && m.Argv == nil:
		return errors.New("no command: give cmd (a string or a list) or argv (a list)")
	}
	field, words := "cmd", []string(m.Cmd)
	if m.Argv != nil {
		field, words = "argv", m.Argv
	}
	if len(words) == 0 || strings.TrimSpace(words[0]) == "" {
		return &modules.FieldError{Field: field, Msg: "is empty; give the program to run and its arguments"}
	}
	return runcmd.ValidateEnv(m.Env)
}

// Run runs the command unless creates or removes says it is already done.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return runcmd.Guarded(ctx, h, m.guards(), m.cmd(), false)
}

// Check reports whether Run would run the command; the guards are read, the
// command is not run, since its effect cannot be known without running it.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return runcmd.Guarded(ctx, h, m.guards(), m.cmd(), true)
}

func (m *Module) guards() runcmd.Guards { return runcmd.Guards{Creates: m.Creates, Removes: m.Removes} }

func (m *Module) cmd() conn.Cmd {
	argv := []string(m.Cmd)
	if m.Argv != nil {
		argv = m.Argv
	}
	c := conn.Cmd{Argv: append([]string(nil), argv...), Env: m.Env, Dir: m.Chdir}
	if m.Stdin != "" {
		c.Stdin = strings.NewReader(m.Stdin)
	}
	return c
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
