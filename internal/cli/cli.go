// Package cli is the runbook command line: one file per command, one table of
// exit codes. cmd/runbook and the testscript tests both call Main.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/redact"
)

// app carries what every command needs, so that tests can run Main in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// secrets are what stdout and stderr redact, once a command has loaded
	// its inputs (see redacting); nil before.
	secrets *redact.Set
}

// Main runs the CLI with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitcode.OK
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	if ds, ok := diag.As(err); ok {
		diag.WriteText(stderr, ds, nil)
		return exitcode.Invalid
	}
	// Visible: an error can quote a value from the runbook or the inventory.
	fmt.Fprintln(stderr, "runbook: "+diag.Visible(err.Error(), true))
	code := codeOf(err)
	if code == exitcode.Failed && isUsageError(err) {
		code = exitcode.Invalid
	}
	return code
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "runbook",
		Short: "Make risky production changes safely",
		Long: `runbook runs a runbook (a YAML file of steps) host by host against an inventory,
with guards, health and metric gates, automatic rollback and a journal that
makes every run auditable and resumable.

Nothing is touched unless the whole runbook is valid.`,
		Example: `  runbook validate runbooks/upgrade-etcd.yml -i lab
  runbook plan runbooks/upgrade-etcd.yml -i lab --format mermaid
  runbook exec runbooks/upgrade-etcd.yml -i prod`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withCode(exitcode.Invalid, fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath()))
	})
	root.AddCommand(
		newVersionCmd(a),
	)
	for _, add := range commands {
		root.AddCommand(add(a))
	}
	return root
}

// commands is filled by the other files of this package, one command each.
var commands []func(*app) *cobra.Command

// isUsageError recognises cobra's argument errors ("accepts 1 arg(s), received 0",
// "unknown command"), which are invalid input.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isTerminal reports whether f is a terminal; commands use it for prompts and colour.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
