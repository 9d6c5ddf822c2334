package modules

// HoldError is a step's error that stops the host without a verdict that
// the change is bad: an analysis that was inconclusive and has no operator
// to ask. The host is rolled back as after a failure, but the run exits 3
// (stopped) rather than 1 when nothing else failed, so a script can tell
// "not proven good" from "proven bad".
type HoldError struct{ Err error }

func (e *HoldError) Error() string { return e.Err.Error() }
func (e *HoldError) Unwrap() error { return e.Err }
