// Package runlock keeps two runs from changing the same hosts at once. A run
// takes one lock per host of its plan (and, when its runbook names one, a lock
// shared by every run of that runbook) before it touches anything, all or
// nothing, and holds them until it ends. A run that cannot take them is
// refused with the holder's identity.
//
// Two stores implement Store: files in a shared state folder (runs on one
// controller, every operator's), and leases in an etcd cluster (runs on any
// controller that reaches it).
package runlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Holder says who holds a lock: what the refused operator needs to find the
// run and its owner.
type Holder struct {
	RunID      string    `json:"run_id"`
	User       string    `json:"user,omitempty"`
	Controller string    `json:"controller,omitempty"` // host name of the machine the run is on
	PID        int       `json:"pid,omitempty"`
	Runbook    string    `json:"runbook,omitempty"`
	Since      time.Time `json:"since"`
}

// Me returns a Holder for run runID of runbook, by this process.
func Me(runID, runbook string) Holder {
	h := Holder{RunID: runID, PID: os.Getpid(), Runbook: runbook, Since: time.Now().UTC().Truncate(time.Second)}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	h.Controller, _ = os.Hostname()
	return h
}

// Clean makes a value read from the store safe to print: a record is
// written by whoever can write the lock folder or the etcd prefix, and a
// control character in it could rewrite the operator's terminal.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// Clean returns h with every text field made safe to print.
func (h Holder) Clean() Holder {
	h.RunID, h.User, h.Controller, h.Runbook = Clean(h.RunID), Clean(h.User), Clean(h.Controller), Clean(h.Runbook)
	return h
}

// String is the holder in one line, for messages.
func (h Holder) String() string {
	h = h.Clean()
	if h.RunID == "" {
		return "a run whose record is not written yet"
	}
	s := "run " + h.RunID
	var who []string
	if h.User != "" {
		who = append(who, "user "+h.User)
	}
	if h.Controller != "" {
		c := "on " + h.Controller
		if h.PID > 0 {
			c += fmt.Sprintf(" (pid %d)", h.PID)
		}
		who = append(who, c)
	}
	if h.Runbook != "" {
		who = append(who, "runbook "+h.Runbook)
	}
	if len(who) > 0 {
		s += " (" + strings.Join(who, ", ") + ")"
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.UTC().Format(time.DateTime) + " UTC"
	}
	return s
}

// Lock is one held lock.
type Lock struct {
	Key    string `json:"key"`
	Holder Holder `json:"holder"`
}

// Break says who breaks locks and why; every store keeps it in its audit log.
type Break struct {
	Time       time.Time `json:"time"`
	By         string    `json:"by"`
	Controller string    `json:"controller,omitempty"`
	Reason     string    `json:"reason"`
	Keys       []string  `json:"keys"`   // asked for
	Broken     []Lock    `json:"broken"` // what was held, and is no more
}

// Store holds the locks.
type Store interface {
	// Acquire takes every key for h, all or nothing, or returns a *HeldError
	// naming the holders of the keys another run holds. A key held by run
	// h.RunID itself (a process of the run that died) is taken over.
	Acquire(ctx context.Context, keys []string, h Holder) (Held, error)
	// List returns the locks held now, sorted by key. It takes no lock.
	List(ctx context.Context) ([]Lock, error)
	// Break removes the locks on keys that are held, records b (with what
	// was broken) in the store's audit log, and returns what was broken.
	Break(ctx context.Context, keys []string, b Break) ([]Lock, error)
	// String names the store in messages: where the locks are.
	String() string
	Close() error
}

// Held is a set of locks a run holds.
type Held interface {
	Keys() []string
	// Lost is closed when the locks are lost while held: the etcd lease
	// expired, or someone broke them with `runbook unlock`.
	Lost() <-chan struct{}
	// LostReason says why, once Lost is closed.
	LostReason() error
	// Release gives the locks back. Releasing twice is harmless.
	Release() error
}

// HeldError is the refusal of Acquire: other runs hold some of the keys.
type HeldError struct {
	Locks []Lock // the keys held by other runs, with their holders
	Store string
}

func (e *HeldError) Error() string {
	var keys []string
	for _, l := range e.Locks {
		keys = append(keys, Describe(l.Key))
	}
	holder := Holder{}
	if len(e.Locks) > 0 {
		holder = e.Locks[0].Holder
	}
	return fmt.Sprintf("%s locked by %s (%s)", strings.Join(keys, ", "), holder, e.Store)
}

// ErrHeld is what errors.Is finds in a *HeldError.
var ErrHeld = errors.New("locked by another run")

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Kinds of keys: a host of the plan, or the name a runbook gives its runs' lock.
const (
	hostPrefix = "host/"
	namePrefix = "name/"
)

// HostKey is the key of the lock on the inventory host name.
func HostKey(name string) string { return hostPrefix + name }

// NameKey is the key of a named lock (the runbook's lock.name).
func NameKey(name string) string { return namePrefix + name }

// ParseKey reads a key as `runbook unlock` takes it: "name/X" or "host/X" as
// `runbook locks` shows them, else a host name.
func ParseKey(s string) string {
	if strings.HasPrefix(s, hostPrefix) || strings.HasPrefix(s, namePrefix) {
		return s
	}
	return HostKey(s)
}

// Describe says what a key locks: "host m1", "lock etcd-prod".
func Describe(key string) string {
	key = Clean(key)
	if n, ok := strings.CutPrefix(key, hostPrefix); ok {
		return "host " + n
	}
	if n, ok := strings.CutPrefix(key, namePrefix); ok {
		return "lock " + n
	}
	return key
}

// sortedKeys returns keys sorted and without duplicates, so that runs take
// locks in one order and never wait on each other in a cycle.
func sortedKeys(keys []string) ([]string, error) {
	out := slices.Clone(keys)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("no lock to take")
	}
	for _, k := range out {
		if !strings.HasPrefix(k, hostPrefix) && !strings.HasPrefix(k, namePrefix) || len(k) == len(hostPrefix) {
			return nil, fmt.Errorf("bad lock key %q", k)
		}
	}
	return out, nil
}

// lost is the Lost part of a Held: closed once, with a reason.
type lost struct {
	ch     chan struct{}
	once   sync.Once
	reason error
}

func newLost() *lost { return &lost{ch: make(chan struct{})} }

func (l *lost) set(reason error) {
	l.once.Do(func() {
		l.reason = reason
		close(l.ch)
	})
}

func (l *lost) Lost() <-chan struct{} { return l.ch }

func (l *lost) LostReason() error {
	select {
	case <-l.ch:
		return l.reason
	default:
		return nil
	}
}

func sortLocks(ls []Lock) {
	slices.SortFunc(ls, func(a, b Lock) int { return strings.Compare(a.Key, b.Key) })
}
