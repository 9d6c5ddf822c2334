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
	// A command that failed before it read its -e (a mistyped flag, -e
	// given to a command without it) may quote one as typed; Visible: an
	// error can quote a value from the runbook or the inventory.
	fmt.Fprintln(stderr, "runbook: "+diag.Visible(typedExtraVars(args).Redact(err.Error()), true))
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

// typedExtraVars returns what args give as -e values, read loosely: every
// word after -e or --extra-vars, and what follows the e of a word of
// shorthands (-ek=v, -yek=v, -e=k=v). A word taken for one by mistake is
// only hidden from an error message.
// addTyped adds one typed -e: of k=v only the value is secret (the name is
// the runbook's own word, and a message naming it must stay readable);
// anything else (JSON, @file) whole.
func addTyped(s *redact.Set, e string) {
	if k, v, ok := strings.Cut(e, "="); ok && k != "" && !strings.ContainsAny(k, " {\"[@") {
		s.Add(v)
		return
	}
	s.Add(e)
}

func typedExtraVars(args []string) *redact.Set {
	s := &redact.Set{}
	for i, a := range args {
		switch {
		case a == "--":
			return s
		case a == "-e" || a == "--extra-vars":
			if i+1 < len(args) {
				addTyped(s, args[i+1])
			}
		case strings.HasPrefix(a, "--extra-vars="):
			addTyped(s, strings.TrimPrefix(a, "--extra-vars="))
		case len(a) > 2 && a[0] == '-' && a[1] != '-':
			if j := strings.IndexByte(a, 'e'); j > 0 && j+1 < len(a) {
				addTyped(s, strings.TrimPrefix(a[j+1:], "="))
			}
		}
	}
	return s
}
