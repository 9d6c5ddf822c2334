// Package exitcode is the one table of process exit codes, documented in the
// README. The CLI, the runner's outcomes and input diagnostics all take their
// codes from here, so a number cannot mean two things in two places.
package exitcode

const (
	OK             = 0 // success
	Failed         = 1 // a host failed (and was rolled back), or the run aborted because of failures
	Invalid        = 2 // invalid input: nothing was touched
	Stopped        = 3 // refused or stopped without a failure, nothing touched by it: preflight did not pass, interrupted, outside a window, lock held
	RollbackFailed = 4 // a rollback failed: a person must look
)
