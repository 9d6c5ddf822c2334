// Package approval keeps the approvals a run waits for (the pause module's
// approve:) in the store its run lock uses: files beside the lock folder on
// one controller, or keys in the lock's etcd cluster for several. A waiting
// run records a Request; `runbook approve` and `runbook reject`, run by other
// people, add Decisions; the run reads them, judges them by the request's
// rules and journals each one.
package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Request is a run waiting at one step of one host for approvals.
type Request struct {
	RunID   string `json:"run_id"`
	Runbook string `json:"runbook,omitempty"`
	StepID  string `json:"step_id"` // spec.Step.ID: "steps[2].block[1]"
	Step    string `json:"step"`    // the step's name as the run shows it
	Host    string `json:"host"`
	Prompt  string `json:"prompt,omitempty"`
	// Required distinct users must approve; StartedBy counts only with Self.
	Required  int    `json:"required"`
	Self      bool   `json:"self,omitempty"`
	StartedBy string `json:"started_by"`
	// Since is when the run began to wait; Deadline when the wait becomes a
	// rejection.
	Since      time.Time `json:"since"`
	Deadline   time.Time `json:"deadline"`
	Controller string    `json:"controller,omitempty"`
	PID        int       `json:"pid,omitempty"`
}

// Key names the wait within its run: a step on a host.
func (r Request) Key() string { return r.StepID + "@" + r.Host }

// Decision is one person's approval or rejection of a run's wait.
type Decision struct {
	RunID   string `json:"run_id"`
	StepID  string `json:"step_id"`
	Host    string `json:"host"`
	Approve bool   `json:"approve"`
	// User is who decided, as they say ($USER or --user); OSUser is the
	// account the command ran as, for the audit.
	User       string    `json:"user"`
	OSUser     string    `json:"os_user,omitempty"`
	Controller string    `json:"controller,omitempty"` // the machine it was given on
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason,omitempty"`
	// ID is the store's name for the decision, unique within the run.
	ID string `json:"-"`
}

// Key is the Request.Key the decision answers.
func (d Decision) Key() string { return d.StepID + "@" + d.Host }

// Verb is "approved" or "rejected".
func (d Decision) Verb() string {
	if d.Approve {
		return "approved"
	}
	return "rejected"
}

// Store keeps requests and decisions.
type Store interface {
	// Ask records that req's run waits (replacing an earlier record of the
	// same wait, from a process of the run that died).
	Ask(ctx context.Context, req Request) error
	// Requests returns the waits of run runID recorded now.
	Requests(ctx context.Context, runID string) ([]Request, error)
	// Done removes the record of the wait: the run no longer waits there.
	Done(ctx context.Context, req Request) error
	// Decide adds d. Decisions are never changed nor removed.
	Decide(ctx context.Context, d Decision) error
	// Decisions returns the decisions on run runID's wait key, oldest first.
	Decisions(ctx context.Context, runID, key string) ([]Decision, error)
	String() string
	Close() error
}

// Identity is who the person at this command line says they are: $USER (what
// login, sudo and ssh set), else the account the process runs as.
func Identity() string {
	if u := strings.TrimSpace(os.Getenv("USER")); u != "" {
		return u
	}
	return OSUser()
}

// OSUser is the account the process runs as.
func OSUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// Verdict is what the decisions on a wait add up to.
type Verdict struct {
	// Approved: enough distinct users approved.
	Approved bool
	// Rejection is the first rejection, which ends the wait; nil if none.
	Rejection *Decision
	// Approvals are those that count, in order.
	Approvals []Decision
}

// Judge adds up ds by req's rules: a rejection by anyone ends the wait; an
// approval counts once per user, and not from the user who started the run
// unless req.Self.
func Judge(req Request, ds []Decision) Verdict {
	var v Verdict
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Key() != req.Key() || d.RunID != req.RunID {
			continue
		}
		if !d.Approve {
			d := d
			v.Rejection = &d
			return v
		}
		if Refusal(req, d.User) != nil || seen[d.User] {
			continue
		}
		seen[d.User] = true
		v.Approvals = append(v.Approvals, d)
		if len(v.Approvals) >= req.Required {
			v.Approved = true
			return v
		}
	}
	return v
}

// ErrNotAllowed is wrapped by what Refusal returns.
var ErrNotAllowed = errors.New("not allowed to approve")

// Refusal says why user may not approve req, or nil.
func Refusal(req Request, user string) error {
	switch {
	case strings.TrimSpace(user) == "":
		return fmt.Errorf("%w: no user name (set $USER or --user)", ErrNotAllowed)
	case user == req.StartedBy && !req.Self:
		return fmt.Errorf("%w: %s started run %s, and step %q needs someone else's approval (approve: self: false)", ErrNotAllowed, Clean(user), Clean(req.RunID), Clean(req.Step))
	}
	return nil
}

// Approvers lists the users of ds.
func Approvers(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.User)
	}
	return out
}

// Clean makes a value read from the store safe to print: whoever can write
// the store wrote it, and a control character could rewrite a terminal.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// maxText bounds a reason or a user name: a decision is a line of audit,
// not a file.
const maxText = 4096

// Check refuses a decision that a store should not keep.
func (d Decision) Check() error {
	switch {
	case !validRunID(d.RunID):
		return fmt.Errorf("%q is not a run id", Clean(d.RunID))
	case strings.TrimSpace(d.User) == "":
		return errors.New("no user name: set $USER or --user")
	case len(d.User) > 256 || len(d.Reason) > maxText:
		return fmt.Errorf("user or reason longer than %d bytes", maxText)
	}
	return nil
}

// validRunID accepts what journal.NewRunID makes (and a little more), and
// never a path.
func validRunID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' || id[0] == '-' {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func sortDecisions(ds []Decision) {
	slices.SortStableFunc(ds, func(a, b Decision) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// randID makes a name unique among those made at the same instant.
func randID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}
