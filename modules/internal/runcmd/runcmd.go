// Package runcmd runs the one command of a command or shell step: the creates and
// removes guards, and the shape of the result that expressions and the journal see.
package runcmd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// Guards are the Ansible-style conditions that skip a command.
type Guards struct {
	Creates string // skip when this path exists
	Removes string // skip when this path does not exist
}

// Skip reports why the command should not run, or "" when it should. Paths are
// tested on the host, from dir when it is set, as the command would see them, and
// with the step's privileges, since a root-only path looks absent to anyone else.
func Skip(ctx context.Context, h *modules.Host, dir string, g Guards) (string, error) {
	if g.Creates != "" {
		ok, err := exists(ctx, h, dir, g.Creates)
		if err != nil {
			return "", fmt.Errorf("creates: %w", err)
		}
		if ok {
			return fmt.Sprintf("skipped: %s exists (creates)", g.Creates), nil
		}
	}
	if g.Removes != "" {
		ok, err := exists(ctx, h, dir, g.Removes)
		if err != nil {
			return "", fmt.Errorf("removes: %w", err)
		}
		if !ok {
			return fmt.Sprintf("skipped: %s does not exist (removes)", g.Removes), nil
		}
	}
	return "", nil
}

func exists(ctx context.Context, h *modules.Host, dir, path string) (bool, error) {
	c := conn.Cmd{Argv: []string{"test", "-e", path}, Dir: dir, Become: h.Become, BecomeUser: h.BecomeUser}
	_, err := h.Conn.Run(ctx, c)
	var ee *conn.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode == 1:
		return false, nil
	}
	// Exit 2 and up is test's own failure (bad usage); anything else is the transport.
	return false, fmt.Errorf("testing %s on %s: %w", path, h.Name, err)
}

// Run runs c on h. A command that ran returns its rc, stdout and stderr in the
// result even when it failed, so failed_when and registered results can use them.
func Run(ctx context.Context, h *modules.Host, c conn.Cmd) (modules.Result, error) {
	c.Become, c.BecomeUser = h.Become, h.BecomeUser
	out, err := h.Conn.Run(ctx, c)
	var ee *conn.ExitError
	if err != nil && !errors.As(err, &ee) {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: Data(out, "")}, err
}

// Skipped is the result of a command that a guard skipped.
func Skipped(reason string) modules.Result {
	return modules.Result{Data: Data(conn.Output{}, reason)}
}

// Data is the result of a command as expressions see it. Trailing newlines are
// cut, as Ansible does, so `result.stdout == "3.7.3"` works for a printed version.
func Data(out conn.Output, skipped string) map[string]any {
	return map[string]any{
		"rc":      out.ExitCode,
		"stdout":  strings.TrimRight(string(out.Stdout), "\r\n"),
		"stderr":  strings.TrimRight(string(out.Stderr), "\r\n"),
		"skipped": skipped != "",
		"msg":     skipped,
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateEnv checks the names of env, which a process could not receive otherwise.
func ValidateEnv(env map[string]string) error {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names) // report the same name first on every run
	for _, k := range names {
		if !envName.MatchString(k) {
			return &modules.FieldError{Field: "env", Msg: fmt.Sprintf("%q is not a variable name; use letters, digits and _, not starting with a digit", k)}
		}
	}
	return nil
}

// Guarded runs c unless the guards say it is already done; with --check
// (check true) it reads the guards and reports what it would run instead,
// since a command's effect cannot be known without running it.
func Guarded(ctx context.Context, h *modules.Host, g Guards, c conn.Cmd, check bool) (modules.Result, error) {
	skip, err := Skip(ctx, h, c.Dir, g)
	if err != nil {
		return modules.Result{}, err
	}
	if skip != "" {
		return Skipped(skip), nil
	}
	if check {
		return modules.Result{Changed: true, Data: map[string]any{"skipped": false, "msg": "would run " + c.String()}}, nil
	}
	return Run(ctx, h, c)
}
