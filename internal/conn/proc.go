package conn

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Proc names a command's process group on its host, so that a later run
// (a resume after the controller died) can tell whether it still runs and
// end it. Start and Boot tell a live group from a new process that got the
// same number: a pid is not reused while its group has a member, and the
// start time of the leader, counted from the boot, is its own.
type Proc struct {
	PGID int // the group, which is its leader's pid
	// Start is the leader's start time in clock ticks after boot (field 22
	// of /proc/PID/stat); 0 when the host has no /proc.
	Start uint64
	// Boot is the host's boot id (/proc/sys/kernel/random/boot_id): a
	// reboot ends every process whatever the numbers say. "" when unknown.
	Boot string
	// Become and BecomeUser are the command's: signalling what sudo
	// started needs the same privileges.
	Become     bool
	BecomeUser string
	// On names the connection it ran over, when the one who watches does
	// not know it: a module's own second connection (to the controller)
	// sets it. Transports leave it empty.
	On string
}

type procKey struct{}

// WithProcWatch returns a context whose commands report their process group
// to f once they started, before they are waited for. f runs on the
// goroutine that runs the command and must return promptly.
func WithProcWatch(ctx context.Context, f func(Proc)) context.Context {
	return context.WithValue(ctx, procKey{}, f)
}

// ProcWatch returns the watcher WithProcWatch put in ctx, or nil.
func ProcWatch(ctx context.Context) func(Proc) {
	f, _ := ctx.Value(procKey{}).(func(Proc))
	return f
}

// NotifyProc tells the watcher of ctx, if any, that a command started as p.
// Transports call it.
func NotifyProc(ctx context.Context, p Proc) {
	if f, ok := ctx.Value(procKey{}).(func(Proc)); ok && f != nil && p.PGID > 1 {
		f(p)
	}
}

// ParseStatStart reads the start time (field 22) from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may hold
// spaces and parentheses itself, so the fields are counted after the last ')'.
func ParseStatStart(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("unexpected /proc stat %q", stat)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ProcCheckScript is a POSIX sh script that says whether the group of a
// Proc still runs and signals it: sh -c ProcCheckScript sh PGID START BOOT SIG.
// It prints "gone" when the host rebooted since, the leader's pid now
// belongs to a process started at another time (so the group ended before
// that pid was reused), or no member is left; else it sends SIG (0 only
// asks) to the whole group and prints "running". The check and the signal
// are one script, so the signal cannot reach a group that replaced it.
const ProcCheckScript = `pgid=$1 start=$2 boot=$3 sig=$4
if [ -n "$boot" ] && [ -r /proc/sys/kernel/random/boot_id ]; then
  read -r b </proc/sys/kernel/random/boot_id
  [ "$b" = "$boot" ] || { echo gone; exit 0; }
fi
if [ -n "$start" ] && [ "$start" != 0 ] && [ -r "/proc/$pgid/stat" ]; then
  s=$(cat "/proc/$pgid/stat" 2>/dev/null) || s=
  s=${s##*) }
  set -- $s
  if [ -n "$s" ] && [ "${20}" != "$start" ]; then echo gone; exit 0; fi
fi
if kill -s 0 -- "-$pgid" 2>/dev/null; then
  [ "$sig" = 0 ] || kill -s "$sig" -- "-$pgid" 2>/dev/null
  echo running
else
  echo gone
fi`
