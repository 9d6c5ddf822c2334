// Package conntest is a test double for conn.Conn: a scripted fake that answers
// commands by matcher, records what ran, and injects faults. Not for production.
//
// Unlike doubles that succeed on any command they were not told about, Fake
// fails an unmatched command with an error that names it, so a typo in the code
// under test (or in the test) cannot pass unnoticed:
//
//	f := conntest.New(t)
//	f.On(conntest.Exact("systemctl", "is-active", "etcd")).Stdout("inactive\n").Exit(3)
//	f.On(conntest.Prefix("systemctl", "start")).Times(1)
//	f.FailAfter(2, nil) // the third command loses the connection
package conntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
)

// Matcher decides whether a rule answers a command.
type Matcher struct {
	desc  string
	match func(conn.Cmd) bool
}

func (m Matcher) String() string { return m.desc }

// Argv is the words a matcher compares: c.Argv, or /bin/sh -c SCRIPT for a
// shell command, so Exact and Prefix work on both.
func Argv(c conn.Cmd) []string {
	if c.Shell != "" {
		return []string{"/bin/sh", "-c", c.Shell}
	}
	return c.Argv
}

// Exact matches a command whose words are exactly argv.
func Exact(argv ...string) Matcher {
	return Matcher{"exact " + conn.QuoteArgv(argv), func(c conn.Cmd) bool { return slices.Equal(Argv(c), argv) }}
}

// Prefix matches a command whose first words are argv.
func Prefix(argv ...string) Matcher {
	return Matcher{"prefix " + conn.QuoteArgv(argv), func(c conn.Cmd) bool {
		a := Argv(c)
		return len(a) >= len(argv) && slices.Equal(a[:len(argv)], argv)
	}}
}

// Regexp matches c.String(), the quoted command line (`/bin/sh -c '...'` for a
// shell command). It panics on a bad expression, as regexp.MustCompile does.
func Regexp(expr string) Matcher {
	re := regexp.MustCompile(expr)
	return Matcher{"regexp " + expr, func(c conn.Cmd) bool { return re.MatchString(c.String()) }}
}

// Func matches the commands f accepts; desc names it in messages.
func Func(desc string, f func(conn.Cmd) bool) Matcher { return Matcher{desc, f} }

// Rule is a scripted answer, set up with its chainable methods. By default a
// rule answers any number of times with exit status 0 and no output.
type Rule struct {
	f       *Fake
	m       Matcher
	out     conn.Output
	err     error
	delay   time.Duration
	hang    bool
	do      func(ctx context.Context, c conn.Cmd) (conn.Output, error)
	times   int // 0: unlimited
	matched int
}

// On adds a rule answering the commands m matches. Rules are tried in the order
// they were added; the first that matches and is not used up answers.
func (f *Fake) On(m Matcher) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &Rule{f: f, m: m}
	f.rules = append(f.rules, r)
	return r
}

// The setters below take the fake's lock because a test may add to a rule while
// the code under test runs commands in other goroutines.

// Stdout sets what the command prints on stdout.
func (r *Rule) Stdout(s string) *Rule { r.set(func() { r.out.Stdout = []byte(s) }); return r }

// Stderr sets what the command prints on stderr.
func (r *Rule) Stderr(s string) *Rule { r.set(func() { r.out.Stderr = []byte(s) }); return r }

// Exit sets the exit status; non-zero makes Run return a *conn.ExitError, as a
// real transport does.
func (r *Rule) Exit(code int) *Rule { r.set(func() { r.out.ExitCode = code }); return r }

// Err makes Run return err (a *conn.TransportError, say) instead of an exit status.
func (r *Rule) Err(err error) *Rule { r.set(func() { r.err = err }); return r }

// Delay makes the command take d, or until ctx is done, whichever comes first.
func (r *Rule) Delay(d time.Duration) *Rule { r.set(func() { r.delay = d }); return r }

// Hang makes the command run until ctx is done, like a command that never ends;
// Run then returns ctx's error as a real transport does after killing it.
func (r *Rule) Hang() *Rule { r.set(func() { r.hang = true }); return r }

// Do answers with fn, for answers that depend on the command or on state;
// fn's Stdin is the recorded input. Exit, Stdout, Stderr and Err are ignored.
func (r *Rule) Do(fn func(ctx context.Context, c conn.Cmd) (conn.Output, error)) *Rule {
	r.set(func() { r.do = fn })
	return r
}

// Times limits the rule to n answers; after that it no longer matches, so a
// later rule can answer the same command differently.
func (r *Rule) Times(n int) *Rule { r.set(func() { r.times = n }); return r }

// Matched reports how many commands the rule answered.
func (r *Rule) Matched() int {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.matched
}

func (r *Rule) set(fn func()) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	fn()
}

// Call is one recorded operation.
type Call struct {
	Op   string   // "run", "put" or "get"
	Cmd  conn.Cmd // for run; Stdin is nil, Data holds what it gave
	Path string   // for put and get
	Data []byte   // run: what was read from Cmd.Stdin; put: the content written
	Mode fs.FileMode
	Err  error // what the fake returned
}

// File is a file in the fake host's filesystem.
type File struct {
	Data []byte
	Mode fs.FileMode
}

// Fake is a scripted conn.Conn. It is safe for concurrent use.
type Fake struct {
	// Name is what String returns; "fake" when empty.
	Name string

	tb         testing.TB
	mu         sync.Mutex
	rules      []*Rule
	calls      []Call
	files      map[string]File
	unmatched  []conn.Cmd
	closed     bool
	faultAfter int // commands left before the fault; -1: no fault
	faultErr   error
	faultHang  bool
}

var _ conn.Conn = (*Fake)(nil)

// New returns a Fake with no rules and no files. When tb is not nil, every
// unmatched command also fails the test, even if the code under test swallows
// the error Run returned.
func New(tb testing.TB) *Fake {
	return &Fake{tb: tb, files: map[string]File{}, faultAfter: -1}
}

// String returns f.Name, or "fake".
func (f *Fake) String() string {
	if f.Name == "" {
		return "fake"
	}
	return f.Name
}

// FailAfter lets the next n commands run normally; every later Run, Put and Get
// fails with err, as on a connection that dropped. A nil err means a
// *conn.TransportError saying the connection was lost.
func (f *Fake) FailAfter(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = &conn.TransportError{Host: f.String(), Err: errors.New("connection lost (injected by conntest)")}
	}
	f.faultAfter, f.faultErr, f.faultHang = n, err, false
}

// HangAfter lets the next n commands run normally; every later Run, Put and Get
// blocks until its ctx is done, as on a host that stopped answering.
func (f *Fake) HangAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faultAfter, f.faultErr, f.faultHang = n, nil, true
}

// fault returns whether the injected fault applies now, counting a command
// when isRun. It must be called with f.mu held.
func (f *Fake) fault(isRun bool) bool {
	if f.faultAfter < 0 {
		return false
	}
	if f.faultAfter == 0 {
		return true
	}
	if isRun {
		f.faultAfter--
	}
	return false
}

// injected waits or fails as the injected fault says.
func (f *Fake) injected(ctx context.Context, hang bool, err error, what string) error {
	if hang {
		<-ctx.Done()
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return err
}

// Run answers c from the first matching rule.
func (f *Fake) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	var stdin []byte
	if c.Stdin != nil {
		var err error
		if stdin, err = io.ReadAll(c.Stdin); err != nil {
			return conn.Output{}, fmt.Errorf("conntest: reading stdin of %s: %w", c, err)
		}
		c.Stdin = bytes.NewReader(stdin)
	}
	name := c.Brief()

	f.mu.Lock()
	idx := len(f.calls)
	recorded := c
	recorded.Stdin = nil
	f.calls = append(f.calls, Call{Op: "run", Cmd: recorded, Data: stdin})
	record := func(out conn.Output, err error) (conn.Output, error) {
		f.mu.Lock()
		f.calls[idx].Err = err
		f.mu.Unlock()
		return out, err
	}
	if f.closed {
		f.mu.Unlock()
		return record(conn.Output{}, fmt.Errorf("conntest: %s: connection is closed", name))
	}
	if f.fault(true) {
		hang, err := f.faultHang, f.faultErr
		f.mu.Unlock()
		return record(conn.Output{}, f.injected(ctx, hang, err, name))
	}
	var r *Rule
	for _, cand := range f.rules {
		if (cand.times == 0 || cand.matched < cand.times) && cand.m.match(c) {
			r = cand
			break
		}
	}
	if r == nil {
		f.unmatched = append(f.unmatched, c)
		desc := make([]string, len(f.rules))
		for i, rr := range f.rules {
			desc[i] = rr.m.desc
			if rr.times > 0 && rr.matched >= rr.times {
				desc[i] += " (used up)"
			}
		}
		f.mu.Unlock()
		err := fmt.Errorf("conntest: no rule matches command %s; rules: [%s]", name, strings.Join(desc, "; "))
		if f.tb != nil {
			f.tb.Errorf("%v", err)
		}
		return record(conn.Output{}, err)
	}
	r.matched++
	out, rerr, delay, hang, do := r.out, r.err, r.delay, r.hang, r.do
	out.Stdout, out.Stderr = bytes.Clone(out.Stdout), bytes.Clone(out.Stderr)
	f.mu.Unlock()

	if hang {
		<-ctx.Done()
		return record(out, fmt.Errorf("%s: killed: %w", name, ctx.Err()))
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return record(out, fmt.Errorf("%s: killed: %w", name, ctx.Err()))
		case <-t.C:
		}
	}
	if do != nil {
		return record(do(ctx, c))
	}
	if rerr != nil {
		return record(out, rerr)
	}
	if out.ExitCode != 0 {
		return record(out, &conn.ExitError{Cmd: name, ExitCode: out.ExitCode, Stderr: out.Stderr})
	}
	return record(out, nil)
}

// Put stores src's content as the file dest.
func (f *Fake) Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) error {
	data, err := io.ReadAll(src)
	if err != nil {
		return fmt.Errorf("conntest: put %s: %w", dest, err)
	}
	f.mu.Lock()
	idx := len(f.calls)
	f.calls = append(f.calls, Call{Op: "put", Path: dest, Data: data, Mode: mode})
	err = f.fileOp(ctx, "put "+dest, func() error {
		f.files[dest] = File{Data: data, Mode: mode}
		return nil
	})
	f.mu.Lock()
	f.calls[idx].Err = err
	f.mu.Unlock()
	return err
}

// Get writes the file src to dst; a missing file is an error wrapping
// fs.ErrNotExist.
func (f *Fake) Get(ctx context.Context, src string, dst io.Writer) error {
	f.mu.Lock()
	idx := len(f.calls)
	f.calls = append(f.calls, Call{Op: "get", Path: src})
	var data []byte
	err := f.fileOp(ctx, "get "+src, func() error {
		file, ok := f.files[src]
		if !ok {
			return fmt.Errorf("conntest: get %s: %w", src, fs.ErrNotExist)
		}
		data = file.Data
		return nil
	})
	if err == nil {
		if _, werr := dst.Write(data); werr != nil {
			err = fmt.Errorf("conntest: get %s: %w", src, werr)
		}
	}
	f.mu.Lock()
	f.calls[idx].Err = err
	f.mu.Unlock()
	return err
}

// fileOp runs op under the lock unless the fake is closed or faulted. It is
// called with f.mu held and returns with it released.
func (f *Fake) fileOp(ctx context.Context, what string, op func() error) error {
	if f.closed {
		f.mu.Unlock()
		return fmt.Errorf("conntest: %s: connection is closed", what)
	}
	if f.fault(false) {
		hang, err := f.faultHang, f.faultErr
		f.mu.Unlock()
		return f.injected(ctx, hang, err, what)
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("conntest: %s: %w", what, err)
	}
	err := op()
	f.mu.Unlock()
	return err
}

// Close marks the connection closed; later operations fail.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// SetFile puts a file in the fake host's filesystem, as if it were there before.
func (f *Fake) SetFile(path string, data []byte, mode fs.FileMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = File{Data: bytes.Clone(data), Mode: mode}
}

// Paths returns the paths of the fake host's files, sorted.
func (f *Fake) Paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.files))
	for p := range f.files {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// RemoveFile takes a file out of the fake host's filesystem.
func (f *Fake) RemoveFile(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

// File returns the file at path and whether it exists.
func (f *Fake) File(path string) (File, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[path]
	file.Data = bytes.Clone(file.Data)
	return file, ok
}

// Calls returns every operation so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Commands returns the command line (conn.Cmd.String) of every Run so far, in
// order, for compact assertions.
func (f *Fake) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Op == "run" {
			out = append(out, c.Cmd.String())
		}
	}
	return out
}

// Unmatched returns the commands no rule answered.
func (f *Fake) Unmatched() []conn.Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.unmatched)
}
