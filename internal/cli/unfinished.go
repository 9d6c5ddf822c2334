package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/runbookhq/runbook/internal/journal"
)

// defaultStateDir is --state-dir's default.
const defaultStateDir = ".runbook"

// nameUnfinished tells, after a fresh run of runbook was refused, which
// earlier runs of the same runbook under stateDir did not end and are not
// running: a refusal of a half-done change (members on two versions) is
// most often what such a run left, and it is that run that must go on,
// with `runbook resume`, not a new one.
func nameUnfinished(w io.Writer, stateDir, self, runbook string) {
	list, err := journal.List(stateDir)
	if err != nil {
		return // a hint only: the refusal stands on its own
	}
	flag := ""
	if stateDir != defaultStateDir {
		flag = " --state-dir " + stateDir
	}
	for _, s := range list {
		if s.ID == self || s.Status != journal.RunCrashed || s.Name != runbook {
			continue
		}
		fmt.Fprintf(w, "run %s of %s did not end (started %s, %d of %d hosts done): it was killed or crashed, and may have left the hosts half-changed; continue it with: runbook resume %s%s\n",
			s.ID, s.Name, s.Started.UTC().Format(time.DateTime+" UTC"), s.HostsDone, s.Hosts, s.ID, flag)
	}
}
