// Package shell is the shell module: it runs a command line through /bin/sh on
// the host, for the pipes, redirections and globs that the command module refuses.
package shell

import (
	"context"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/runcmd"
)

func init() {
	modules.Register(modules.Info{
		Name: "shell",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "run a command line through /bin/sh on the host",
			Description: `Runs cmd with /bin/sh -c on the host and fails when it exits non-zero.
Everything the shell does happens: variables, globs, pipes, redirections.
That is also the danger: a value from vars placed into cmd with {{ }} becomes
shell syntax. Prefer the command module, and pass values through env, where
the shell never parses them.

creates, removes and the result (rc, stdout, stderr, skipped, msg) are as
for the command module.`,
			Example: `- name: keep the last five snapshots
  shell:
    cmd: ls -1t /var/backups/etcd/*.db | tail -n +6 | xargs -r rm --
- name: write the member's environment file
  shell:
    cmd: cat > /etc/etcd/etcd.env
    stdin: |
      ETCD_NAME={{ host.name }}
    creates: /etc/etcd/etcd.env`,
		},
	})
}

// Module holds the shell module's arguments.
type Module struct {
	Cmd     string            `yaml:"cmd" runbook:"required" doc:"command line run by /bin/sh -c"`
	Chdir   string            `yaml:"chdir" doc:"folder on the host to run in"`
	Env     map[string]string `yaml:"env" doc:"environment variables added for the command; the safe way to pass values"`
	Creates string            `yaml:"creates" doc:"skip the command when this path exists on the host"`
	Removes string            `yaml:"removes" doc:"skip the command when this path does not exist on the host"`
	Stdin   string            `yaml:"stdin" doc:"text written, as it is, to the command's standard input"`
}

// Defaults returns the arguments as Run sees them; shell has no defaults.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

// Validate rejects an empty command line and bad environment names.
func (m *Module) Validate() error {
	if strings.TrimSpace(m.Cmd) == "" {
		return &modules.FieldError{Field: "cmd", Msg: "is empty; give the command line to run"}
	}
	return runcmd.ValidateEnv(m.Env)
}

// Run runs the command line unless creates or removes says it is already done.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return runcmd.Guarded(ctx, h, m.guards(), m.cmd(), false)
}

// Check reports whether Run would run the command line; the guards are read, the
// command line is not run, since its effect cannot be known without running it.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return runcmd.Guarded(ctx, h, m.guards(), m.cmd(), true)
}

func (m *Module) guards() runcmd.Guards { return runcmd.Guards{Creates: m.Creates, Removes: m.Removes} }

func (m *Module) cmd() conn.Cmd {
	c := conn.Cmd{Shell: m.Cmd, Env: m.Env, Dir: m.Chdir}
	if m.Stdin != "" {
		c.Stdin = strings.NewReader(m.Stdin)
	}
	return c
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
