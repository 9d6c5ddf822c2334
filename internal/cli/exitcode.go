package cli

import (
	"errors"
	"fmt"

	"github.com/runbookhq/runbook/internal/exitcode"
)

// coder is implemented by errors that know their exit code (diag.DiagsError, run outcomes).
type coder interface{ ExitCode() int }

// exitError wraps an error with an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
func (e *exitError) ExitCode() int { return e.code }

// withCode gives err an exit code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// invalidf is a usage or input error: exit 2.
func invalidf(format string, args ...any) error {
	return withCode(exitcode.Invalid, fmt.Errorf(format, args...))
}

// codeOf returns the exit code an error asks for; errors that do not say are failures.
func codeOf(err error) int {
	if err == nil {
		return exitcode.OK
	}
	var c coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return exitcode.Failed
}

// silentError ends the program with a code after the command already printed
// everything worth saying (diagnostics, a recap).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }
func (e *silentError) ExitCode() int { return e.code }
