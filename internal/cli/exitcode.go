package cli

import (
	"errors"
	"fmt"
)

// Exit codes, documented in the README. Every command uses this one table.
const (
	ExitOK             = 0 // success
	ExitFailed         = 1 // a host failed (and was rolled back), or the run aborted because of failures
	ExitInvalid        = 2 // invalid input: nothing was touched
	ExitStopped        = 3 // refused or stopped without a failure: preflight did not pass, interrupted, outside a window, lock held
	ExitRollbackFailed = 4 // a rollback failed: a person must look
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
	return withCode(ExitInvalid, fmt.Errorf(format, args...))
}

// codeOf returns the exit code an error asks for; errors that do not say are failures.
func codeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var c coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return ExitFailed
}

// silentError ends the program with a code after the command already printed
// everything worth saying (diagnostics, a recap).
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }
func (e *silentError) ExitCode() int { return e.code }
