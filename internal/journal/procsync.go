package journal

import (
	"os"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/internal/event"
)

// A step_process event records a command as soon as it started, so that a
// resume after the controller died can find it still running. It is
// written before the command is waited for, one per command: dozens in a
// run, each of which an fsync would hold up by the disk's flush time (10
// ms and more on a busy disk), most of them inside a member's outage.
//
// A record of a process on this machine, in this boot, needs no fsync of
// its own. Should this process die, the line is in the page cache, where
// the resume reads it; should the machine go down, the process it records
// goes with it, and a record could only say that it runs no more (the
// resume compares boot ids). The next event's fsync, before any further
// action, makes it durable with it. Processes on other machines outlive a
// crash of this one, and their records are synced as every other event.
func syncNeeded(e event.Event) bool {
	return e.Kind != event.StepProcess || e.Boot == "" || e.Boot != thisBoot()
}

// thisBoot is this machine's boot id, "" when it has none.
var thisBoot = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})
