package event

// Kinds of the events of approvals and change windows.
const (
	// ApprovalWait says a step waits for approvals on a host; Data holds
	// the rules (required, self, timeout, started_by) and the command that
	// approves it (approve_command).
	ApprovalWait Kind = "approval_wait"
	// Approval is one person's decision, as the waiting run saw it: Data
	// holds decision (approved, rejected or timeout), user, os_user,
	// controller, time, reason, and counted (with why when it does not).
	Approval Kind = "approval"
	// Window is the change window refusing the run or a batch or a step
	// (Status refused, Error with the next opening), or ignored by
	// --ignore-window (Engine: Ignored, Reason: the operator's reason).
	Window Kind = "window"
)
