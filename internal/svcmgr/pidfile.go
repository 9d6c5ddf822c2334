package svcmgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/conn"
)

// StartSettle is how long a process started by the pidfile manager without a
// readiness probe (Service.Ready) must stay alive before Start reports
// success: a bad binary or a bad flag usually makes a daemon exit within it,
// and that must be a failed start, with its log. With a probe, the process
// serving is the proof, and Start waits no longer than that.
var StartSettle = time.Second

// signals are the stop signals accepted, by name, so the same value works with
// every kill(1) (numbers differ between systems).
var signals = map[string]bool{
	"HUP": true, "INT": true, "QUIT": true, "ABRT": true, "KILL": true, "USR1": true,
	"USR2": true, "ALRM": true, "TERM": true, "WINCH": true,
}

// signalName returns sig without "SIG" and upper-cased; "" means TERM.
func signalName(sig string) string {
	if sig == "" {
		return "TERM"
	}
	return strings.TrimPrefix(strings.ToUpper(sig), "SIG")
}

// pidfile runs a daemon of our own: started detached with its pid written to
// Pidfile, checked with kill -0, stopped with a signal then SIGKILL. Every
// step is a small POSIX sh script with each value quoted by conn.Quote.
// StartCmd must stay in the foreground (etcd does): a program that forks and
// exits to daemonize itself looks like one that died at once.
type pidfile struct{}

func (pidfile) Validate(s Service) error {
	cs := common(s)
	cs = append(cs,
		check{"Pidfile", s.Pidfile == "", "is required"},
		check{"Pidfile", s.Pidfile != "" && !strings.HasPrefix(s.Pidfile, "/"), "must be an absolute path"},
		argvCheck("StartCmd", s.StartCmd, true),
		check{"LogFile", s.LogFile != "" && !strings.HasPrefix(s.LogFile, "/"), "must be an absolute path"},
		check{"Signal", !signals[signalName(s.Signal)], fmt.Sprintf("unknown signal %q; want one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH, ABRT, ALRM, KILL", s.Signal)},
		check{"KillAfter", s.KillAfter < 0, "must not be negative"},
		check{"KillAfter", s.KillAfter != 0 && signalName(s.Signal) == "KILL", "is not used when Signal is KILL; remove it"},
		check{"KillAfter", s.KillAfter > 0 && s.KillAfter >= s.wait(),
			fmt.Sprintf("(%s) must be shorter than Wait (%s), to leave time for SIGKILL", dur(s.KillAfter), dur(s.wait()))},
		check{"KillWhenUnlocked", s.KillWhenUnlocked != "" && !strings.HasPrefix(s.KillWhenUnlocked, "/"),
			fmt.Sprintf("(%q) must be an absolute path: the file the service keeps locked while its data is open", s.KillWhenUnlocked)},
		check{"KillWhenUnlocked", s.KillWhenUnlocked != "" && signalName(s.Signal) == "KILL", "is not used when Signal is KILL; remove it"},
	)
	cs = append(cs, unused("pidfile", s, "StopCmd", "StatusCmd")...)
	return validate(cs...)
}

// killAfter defaults to half the wait: enough for most daemons to shut down
// cleanly, and the other half for SIGKILL to take effect and be seen.
func (s Service) killAfter() time.Duration {
	if s.KillAfter > 0 {
		return s.KillAfter
	}
	return s.wait() / 2
}

// statusScript prints one line: "none" (no pidfile), "invalid CONTENT",
// "stale PID", "zombie PID", "running PID" or, when %[3]s checked a lock,
// "running PID LOCK" (see lockCheck), or "killed PID" (see killUnlocked).
// kill -0 also fails for a live process we may not signal (EPERM), so a
// failure is checked again in /proc, or with ps where there is no /proc. A
// zombie answers kill -0 but runs nothing: it is stopped, waiting for a
// parent that may never reap it. Files are read by the shell itself: a
// stop checks every few milliseconds, and each command forked would add
// to the service's outage on a busy host. The pidfile's first line is its
// pid; anything on a line after it makes it invalid. exec ends the script
// (with the shell's message) when the pidfile cannot be opened.
// %[2]s runs where the process is found stopped, before the line is
// printed (see stoppedHook); %[3]s where it is found running.
const statusScript = `f=%[1]s
lock=
[ -e "$f" ] || { echo none; exit 0; }
exec 8<"$f"
pid= more=
IFS= read -r pid <&8; IFS= read -r more <&8
exec 8<&-
[ -z "$more" ] || pid="$pid $more"
case $pid in ''|0*|*[!0-9]*) printf 'invalid %%s\n' "$pid"; exit 0;; esac
alive=
if kill -0 "$pid" 2>/dev/null; then alive=1
elif [ -d /proc/self ]; then [ -d "/proc/$pid" ] && alive=1
elif ps -p "$pid" >/dev/null 2>&1; then alive=1
fi
[ -n "$alive" ] || { %[2]secho "stale $pid"; exit 0; }
if [ -r "/proc/$pid/stat" ]; then
  st=; IFS= read -r st 2>/dev/null <"/proc/$pid/stat"
  st=${st##*') '}
  case $st in Z*|X*) %[2]secho "zombie $pid"; exit 0;; esac
fi
%[3]secho "running $pid $lock"
`

// stoppedHook is what the status check of a stop runs once it finds the
// process stopped: it removes the pidfile if it still holds the pid stopped,
// so a process started meanwhile by someone else keeps its pidfile (as
// removeScript). It is part of the last check rather than a command of its
// own after it, which would be one more round trip while the service is
// down.
const stoppedHook = `if [ "$pid" = %d ]; then rm -f -- "$f" || { echo "stopped, but removing pidfile $f failed" >&2; exit 1; }; fi; `

// lockCheck, a hook of statusScript where the process runs, sets lock to
// what a try of an exclusive flock(2) lock on the file found: locked (some
// process holds a lock on it), unlocked, missing (no such file), noflock (no
// flock(1) on the host) or error (the try failed otherwise). The file is
// opened for reading, after a test that it is there: flock(1) given a path
// would create it. The lock, if taken, is the flock process's own and ends
// with it. Where the try fails, nothing is known: only unlocked may lead to
// a kill.
const lockCheck = `k=%s
if [ ! -f "$k" ]; then lock=missing
elif ! command -v flock >/dev/null 2>&1; then lock=noflock
else
  flock -n -x -E 75 9 2>/dev/null 9<"$k"
  case $? in 0) lock=unlocked;; 75) lock=locked;; *) lock=error;; esac
fi
`

// killUnlocked, after lockCheck, sends SIGKILL to the pid a stop waits for
// once the file is unlocked, in the same check: the kill costs no round
// trip of its own while the service is down.
const killUnlocked = `if [ "$lock" = unlocked ] && [ "$pid" = %d ] && kill -s KILL "$pid" 2>/dev/null; then echo "killed $pid"; exit 0; fi
`

// pidStatus is what one status check saw.
type pidStatus struct {
	st     State
	pid    int    // the pid in the pidfile, 0 if none
	seen   string // for messages
	lock   string // what lockCheck found, if it ran and the process runs
	killed bool   // killUnlocked sent SIGKILL
}

// status returns the state, the pid in the pidfile (0 if none) and what was seen.
func (m pidfile) status(ctx context.Context, c conn.Conn, s Service) (State, int, string, error) {
	return m.statusThen(ctx, c, s, "")
}

// statusThen is status, running hook (shell, ending in "; ") where the
// process is found stopped.
func (m pidfile) statusThen(ctx context.Context, c conn.Conn, s Service, hook string) (State, int, string, error) {
	ps, err := m.check(ctx, c, s, hook, "")
	return ps.st, ps.pid, ps.seen, err
}

// check runs statusScript with its hooks: stopped where the process is
// found stopped, running where it runs.
func (pidfile) check(ctx context.Context, c conn.Conn, s Service, stopped, running string) (pidStatus, error) {
	out, err := c.Run(ctx, s.shell(fmt.Sprintf(statusScript, conn.Quote(s.Pidfile), stopped, running)))
	if err != nil {
		return pidStatus{}, scriptError(s.Name+": reading pidfile "+s.Pidfile, err)
	}
	line := strings.TrimSpace(string(out.Stdout))
	word, arg, _ := strings.Cut(line, " ")
	if word == "none" {
		return pidStatus{st: Stopped, seen: "no pidfile " + s.Pidfile}, nil
	}
	if word == "invalid" {
		return pidStatus{}, fmt.Errorf("%s: pidfile %s holds %q, not a pid", s.Name, s.Pidfile, trimOut([]byte(arg)))
	}
	fields := strings.Fields(arg)
	pid, perr := 0, error(nil)
	if len(fields) > 0 {
		pid, perr = strconv.Atoi(fields[0])
	}
	if len(fields) == 0 || len(fields) > 2 || perr != nil || pid <= 0 || len(fields) == 2 && word != "running" {
		return pidStatus{}, fmt.Errorf("%s: unexpected answer from the pidfile check: %q", s.Name, trimOut(out.Stdout))
	}
	switch word {
	case "running":
		ps := pidStatus{st: Running, pid: pid, seen: fmt.Sprintf("pid %d still running", pid)}
		if len(fields) == 2 {
			ps.lock = fields[1]
		}
		return ps, nil
	case "killed":
		// Sent just now: it is gone once a check finds it stopped.
		return pidStatus{st: Running, pid: pid, seen: fmt.Sprintf("pid %d got SIGKILL", pid), killed: true}, nil
	case "stale":
		return pidStatus{st: Stopped, pid: pid, seen: fmt.Sprintf("pid %d not running", pid)}, nil
	case "zombie":
		return pidStatus{st: Stopped, pid: pid, seen: fmt.Sprintf("pid %d exited (zombie)", pid)}, nil
	}
	return pidStatus{}, fmt.Errorf("%s: unexpected answer from the pidfile check: %q", s.Name, trimOut(out.Stdout))
}

func (m pidfile) Status(ctx context.Context, c conn.Conn, s Service) (State, error) {
	if err := m.Validate(s); err != nil {
		return Unknown, err
	}
	st, _, _, err := m.status(ctx, c, s)
	return st, err
}

// startScript starts the command detached and writes its pid. setsid puts it
// in a session of its own, so neither a hangup nor a signal to our command's
// process group reaches it; it does not fork when its caller is not a group
// leader (a background job of a non-interactive sh is not), so $! is the
// daemon's pid. nohup is the fallback where there is no setsid (BSDs, macOS).
// The folders of the pidfile and the log are made as needed, like systemd's
// RuntimeDirectory, so a first start on a fresh host works (both paths are
// absolute, so a folder is what precedes the last slash: no dirname to fork
// while the service is down). The log is opened
// first so that an unwritable one fails here, with the shell's message, and not
// silently in the background job.
const startScript = `f=%[1]s
log=%[2]s
mkdir -p -- "${f%%/*}/" "${log%%/*}/" || exit 1
%[3]s
: >>"$log" || exit 1
size=$(wc -c <"$log") || size=0
if command -v setsid >/dev/null 2>&1; then
  setsid %[4]s >>"$log" 2>&1 </dev/null &
else
  nohup %[4]s >>"$log" 2>&1 </dev/null &
fi
pid=$!
if ! { echo "$pid" >"$f.runbook-$$" && mv -f -- "$f.runbook-$$" "$f"; }; then
  kill -s KILL "$pid"; rm -f -- "$f.runbook-$$"; exit 1
fi
echo "$pid" $size
`

func (m pidfile) Start(ctx context.Context, c conn.Conn, s Service) (started Result, err error) {
	if err := m.Validate(s); err != nil {
		return Result{}, err
	}
	st, pid, _, err := m.status(ctx, c, s)
	if err != nil {
		return Result{}, err
	}
	defer func() { started.Before = st }()
	if st == Running {
		return Result{PID: pid}, nil
	}
	log, cd := "/dev/null", ""
	if s.LogFile != "" {
		log = s.LogFile
	}
	if s.Dir != "" {
		// cd prints the folder when CDPATH leads it there; our stdout is the pid.
		cd = "cd -- " + conn.Quote(s.Dir) + " >/dev/null || exit 1"
	}
	script := fmt.Sprintf(startScript, conn.Quote(s.Pidfile), conn.Quote(log), cd, conn.QuoteArgv(s.StartCmd))
	deadline := time.Now().Add(s.wait())
	out, err := runBounded(ctx, c, deadline, s.shell(script))
	if err != nil {
		return Result{}, scriptError(s.Name+": start", err)
	}
	// The pid, and the size of the log before the process wrote to it: what
	// it says if it exits at once is after that, not the last words of the
	// process before it (the log is appended to).
	var logSize int64
	fields := strings.Fields(string(out.Stdout))
	if len(fields) == 2 {
		logSize, err = strconv.ParseInt(fields[1], 10, 64)
	}
	if err == nil && len(fields) == 2 {
		pid, err = strconv.Atoi(fields[0])
	}
	if err != nil || len(fields) != 2 {
		return Result{Changed: true}, fmt.Errorf("%s: start printed %q, not a pid and the log's size", s.Name, trimOut(out.Stdout))
	}
	res := Result{Changed: true, PID: pid}

	// The process runs from the moment it is forked, so there is nothing to
	// wait for but its staying alive: watch it for StartSettle, within the
	// wait, or, with a readiness probe, until it serves (a process that
	// answers has not died of a bad flag). A probe that never passes is the
	// caller's to report: it knows what it asked.
	settle := time.Now().Add(min(StartSettle, time.Until(deadline)))
	if s.Ready != nil {
		settle = deadline
	}
	exited := false
	_, _, err = awaitFunc(ctx, settle, func(ctx context.Context) (bool, string, error) {
		st, got, seen, err := m.status(ctx, c, s)
		switch {
		case err != nil:
			return false, seen, err
		case st == Running && got != pid:
			return false, "", fmt.Errorf("%s: pidfile %s now holds pid %d, not %d: is something else starting it?", s.Name, s.Pidfile, got, pid)
		case st == Stopped:
			exited = true
			return true, seen, nil
		case st != Running || s.Ready == nil:
			return false, seen, nil
		}
		return s.Ready(ctx)
	})
	if err != nil {
		return res, fmt.Errorf("%s: checking pid %d after start: %w", s.Name, pid, err)
	}
	if exited {
		err := fmt.Errorf("%s exited right after start (pid %d)%s", s.Name, pid, m.lastWords(ctx, c, s, logSize))
		// Tidy only: a stale pidfile is harmless, and the error above matters more.
		_, _ = c.Run(ctx, s.shell(fmt.Sprintf(removeScript, conn.Quote(s.Pidfile), pid)))
		return res, err
	}
	return res, nil
}

// lastWords says what the process wrote to its log after offset (the log's
// size before it started), its last lines on one line, for an error
// message that an operator reads first: the new process's own words, not
// the shutdown of the process before it.
func (pidfile) lastWords(ctx context.Context, c conn.Conn, s Service, offset int64) string {
	if s.LogFile == "" {
		return "; its output was discarded: set a log file to see why"
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	script := fmt.Sprintf("tail -c +%d -- %s | tail -n %d", offset+1, conn.Quote(s.LogFile), lastWordsLines)
	out, err := c.Run(tctx, s.shell(script))
	if err != nil {
		return fmt.Sprintf("; reading %s failed: %v", s.LogFile, err)
	}
	words := LastWords(string(out.Stdout))
	if words == "" {
		return ", writing nothing to " + s.LogFile
	}
	return ", saying: " + words + " (the end of its output in " + s.LogFile + ")"
}

// lastWordsLines is how many of a process's last lines an error shows.
const lastWordsLines = 5

// LastWords puts the last lines a process wrote on one line, the newest
// last: "fatal: failed to verify flags: unknown flag | ...". A line of a
// JSON log (etcd's, zap's) is shown as its level, message and error.
func LastWords(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, cut(jsonLogLine(l), 300))
		}
	}
	if len(lines) > lastWordsLines {
		lines = lines[len(lines)-lastWordsLines:]
	}
	return strings.Join(lines, " | ")
}

// jsonLogLine shows a structured log line as "level: msg: error", or the
// line as it is when it is not one.
func jsonLogLine(l string) string {
	if !strings.HasPrefix(l, "{") {
		return l
	}
	var rec map[string]any
	if json.Unmarshal([]byte(l), &rec) != nil {
		return l
	}
	msg, ok := rec["msg"].(string)
	if !ok {
		return l
	}
	if lvl, ok := rec["level"].(string); ok && lvl != "" {
		msg = lvl + ": " + msg
	}
	if e, ok := rec["error"].(string); ok && e != "" {
		msg += ": " + e
	}
	return msg
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// kill sends sig to pid. A process that is already gone is not an error: the
// caller checks the state next anyway.
func (pidfile) kill(ctx context.Context, c conn.Conn, s Service, sig string, pid int) error {
	p := strconv.Itoa(pid)
	_, err := c.Run(ctx, s.shell("kill -s "+conn.Quote(sig)+" "+p+" || ! kill -0 "+p+" 2>/dev/null"))
	if err != nil {
		return scriptError(fmt.Sprintf("%s: sending SIG%s to pid %d", s.Name, sig, pid), err)
	}
	return nil
}

// removeScript removes the pidfile only if it still holds the pid given (of
// a process that exited right after its start), so a process started
// meanwhile by someone else keeps its pidfile.
const removeScript = `f=%s
if [ "$(cat -- "$f" 2>/dev/null)" = %d ]; then rm -f -- "$f"; fi
`

func (m pidfile) Stop(ctx context.Context, c conn.Conn, s Service) (stopped Result, err error) {
	if err := m.Validate(s); err != nil {
		return Result{}, err
	}
	// With KillWhenUnlocked, the first check also sees whether the service
	// holds its lock: only a lock it held as the stop began, and released
	// since, says that it closed its data.
	watch := ""
	if s.KillWhenUnlocked != "" {
		watch = fmt.Sprintf(lockCheck, conn.Quote(s.KillWhenUnlocked))
	}
	first, err := m.check(ctx, c, s, "", watch)
	if err != nil {
		return Result{}, err
	}
	st, pid := first.st, first.pid
	defer func() { stopped.Before = st }()
	if st != Running {
		return Result{}, nil
	}
	res := Result{Changed: true, PID: pid}
	sig := signalName(s.Signal)
	armed := watch != "" && first.lock == "locked"
	if watch != "" && !armed {
		res.Note = unarmed(s.KillWhenUnlocked, first.lock)
	}
	begin := time.Now()
	deadline := begin.Add(s.wait())
	hook := fmt.Sprintf(stoppedHook, pid)
	killHook := watch + fmt.Sprintf(killUnlocked, pid)
	probe := func(ctx context.Context) (State, string, error) {
		running := ""
		if armed {
			running = killHook
		}
		ps, err := m.check(ctx, c, s, hook, running)
		if err == nil && ps.st == Running && ps.pid != pid {
			return Unknown, "", fmt.Errorf("%s: pidfile %s now holds pid %d, not %d: is something else starting it?", s.Name, s.Pidfile, ps.pid, pid)
		}
		if ps.killed {
			armed = false
			res.Killed, res.Unlocked = true, true
			res.KillReason = fmt.Sprintf("SIGKILL %s after %s: %s unlocked", dur(time.Since(begin).Round(time.Millisecond)), sig, s.KillWhenUnlocked)
		}
		return ps.st, ps.seen, err
	}

	if err := m.kill(ctx, c, s, sig, pid); err != nil {
		return res, err
	}
	timer := begin.Add(s.killAfter())
	if sig == "KILL" {
		timer = deadline
	}
	// The wait for the exit ends early on a kill once unlocked, so that the
	// wait after that SIGKILL polls quickly again, as after any signal:
	// the backoff grown meanwhile would add its interval to the outage.
	// While the lock is watched, the checks come closer together for a
	// while: the unlock comes within milliseconds of the signal, and each
	// interval's remainder is time the service is down for nothing.
	b := &backoff.Backoff{}
	if armed {
		b = watchBackoff()
	}
	done, seen, err := awaitWith(ctx, timer, b, func(ctx context.Context) (bool, string, error) {
		st, seen, err := probe(ctx)
		return st == Stopped || res.Unlocked, seen, err
	})
	done = done && !res.Unlocked
	if err != nil {
		return res, fmt.Errorf("%s: waiting for pid %d to exit: %w", s.Name, pid, err)
	}
	if !done && sig != "KILL" && !res.Killed {
		if err := m.kill(ctx, c, s, "KILL", pid); err != nil {
			return res, err
		}
		res.Killed = true
		res.KillReason = fmt.Sprintf("SIGKILL %s after %s, the kill-after limit: %s", dur(s.killAfter()), sig, seen)
		armed = false
	}
	if !done && res.Killed {
		b := &backoff.Backoff{}
		if res.Unlocked {
			b = watchBackoff()
		}
		done, seen, err = awaitWith(ctx, deadline, b, func(ctx context.Context) (bool, string, error) {
			st, seen, err := probe(ctx)
			return st == Stopped, seen, err
		})
		if err != nil {
			return res, fmt.Errorf("%s: waiting for pid %d to exit after SIGKILL: %w", s.Name, pid, err)
		}
	}
	if !done {
		how := "sent SIG" + sig
		switch {
		case res.Unlocked:
			how += ", then " + res.KillReason
		case res.Killed:
			how += ", then SIGKILL after " + dur(s.killAfter())
		}
		return res, fmt.Errorf("%s did not stop within %s; %s (%s)", s.Name, dur(s.wait()), seen, how)
	}
	// The check that found it stopped removed its pidfile (stoppedHook).
	return res, nil
}

// watchBackoff paces the checks of a stop that watches KillWhenUnlocked:
// closer than usual for two seconds, the time a shutdown that closed its
// data lingers at most in the case it is for.
func watchBackoff() *backoff.Backoff {
	return &backoff.Backoff{First: 5 * time.Millisecond, Max: 20 * time.Millisecond, SlowAfter: 2 * time.Second}
}

// unarmed says why KillWhenUnlocked did not apply to a stop, from what
// lockCheck found as it began.
func unarmed(path, lock string) string {
	why := map[string]string{
		"unlocked": path + " was not locked when the stop began",
		"missing":  "there is no file " + path,
		"noflock":  "the host has no flock command to check " + path,
		"error":    "the lock on " + path + " could not be checked (not readable, or a flock(1) without -E, as busybox's)",
	}[lock]
	if why == "" {
		why = "the lock on " + path + " could not be checked"
	}
	return why + ": waited for the process to exit, with no early SIGKILL"
}

// scriptError describes a failed script by what it was for rather than by its
// text, which would bury the reason under a dozen lines of shell. It still
// wraps err, so *conn.ExitError and *conn.TransportError remain visible.
func scriptError(what string, err error) error {
	var ee *conn.ExitError
	if !errors.As(err, &ee) {
		return &wrapped{what + ": " + err.Error(), err}
	}
	msg := fmt.Sprintf("%s: exit status %d", what, ee.ExitCode)
	if s := trimOut(ee.Stderr); s != "" {
		msg += ": " + s
	}
	return &wrapped{msg, err}
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }
