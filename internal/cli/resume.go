package cli

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/runner"
)

func init() { commands = append(commands, newResumeCmd) }

func newResumeCmd(a *app) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "resume RUN_ID [-e k=v...]",
		Short: "Continue a run that was killed or interrupted",
		Long: `Continue a run from its journal: hosts that finished are not touched again,
and a host that was interrupted goes on from its first step that had not
completed (the step in flight at the crash runs again).

The runbook and inventory are read again from the paths the run recorded and
must be unchanged (their digests are checked); -e values are never recorded
(only their names, to say which are missing), so give the same -e again.

With --state etcd://..., the run's journal is read from the shared store
into --state-dir first: a run started or continued on another controller
goes on here, in the same journal.`,
		Example: "  runbook runs\n  runbook resume 20261124T023955Z-3f9a01 --yes",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return runIDs(f.stateDir), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ignoreSIGPIPE()
			if err := checkFormat(f.output, "text", "json"); err != nil {
				return err
			}
			if err := f.sshFlags.check(cmd); err != nil {
				return err
			}
			if err := f.checkWindowFlags(); err != nil {
				return err
			}
			stateArg, err := f.state.get()
			if err != nil {
				return err
			}
			if stateArg != nil {
				// Another controller may have started or continued the run.
				if err := a.fetchShared(f.stateDir, args[0], stateArg); err != nil {
					return err
				}
			}
			j, st, err := journal.OpenAppend(f.stateDir, args[0])
			if err != nil {
				return withCode(exitcode.Stopped, err)
			}
			defer j.Close()
			if st.Finished && !st.Interrupted {
				return withCode(exitcode.Stopped, fmt.Errorf("run %s already ended (%s, exit %d); start a new run with exec", st.RunID, st.Status, st.ExitCode))
			}
			info := st.Info
			if err := checkVarNames(st.RunID, info.VarNames, f.extra, f.vault); err != nil {
				return err
			}
			in := inputFlags{inventory: info.Inventory, limit: info.Limit, extra: f.extra, vault: f.vault, importPath: info.ImportPath}
			l, p, ds := buildPlanRun(info.Runbook, &in, info.Seed, eval.Run{ID: st.RunID, Started: st.Started, Resumed: true}, info.Tags, info.SkipTags)
			// From here on nothing the command prints may show a secret.
			a, flush := a.redacting(l.secrets)
			defer func() { err = a.secrets.Error(err); flush() }()
			if err := a.report(ds, l.sources, "text"); err != nil || p == nil {
				if err == nil {
					err = &silentError{code: exitcode.Invalid}
				}
				return err
			}
			f.shared = runState(p, stateArg)
			key, err := varsKey(f.stateDir, st.RunID, info.VarsDigest)
			if err != nil {
				return withCode(exitcode.Stopped, fmt.Errorf("refusing to resume run %s: the -e variables cannot be checked: %w", st.RunID, err))
			}
			// The plan the run was made of, in the order its first part
			// decided, or a refusal that says what changed.
			resumed, err := runner.ResumePlan(st, p, key)
			if err != nil {
				return withCode(exitcode.Stopped, err)
			}
			p = resumed
			f.tags, f.skipTags, f.check = info.Tags, info.SkipTags, info.Check
			f.diff = info.Diff
			if !cmd.Flags().Changed("forks") && info.Forks > 0 {
				f.forks = info.Forks
			}
			if f.output != "json" {
				fmt.Fprintf(a.stdout, "resuming run %s of %s\n", st.RunID, info.Runbook)
				writeResumeSummary(a.stdout, st)
			}
			if !f.yes {
				ok, err := a.confirm(fmt.Sprintf("Resume run %s? [y/N] ", st.RunID))
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintln(a.stderr, "runbook: not confirmed; nothing was touched")
					return &silentError{code: exitcode.Stopped}
				}
			}
			// The same run may take its own locks again; another run's refuse.
			lk, err := a.lockRun(p, info.Runbook, info.Inventory, st.RunID, &f)
			if err != nil {
				return err
			}
			defer lk.release()
			if err := a.shareResumed(j, st, f.shared); err != nil {
				return err
			}
			rinfo := runInfo(cmd, info.Runbook, &f, p, key)
			rinfo.Inventory, rinfo.Limit, rinfo.Seed = info.Inventory, info.Limit, info.Seed
			rinfo.ImportPath = info.ImportPath
			rinfo.Lock, f.lock = lk.record(), lk
			return a.execute(cmd, p, j, st, rinfo, &f)
		},
	}
	cmd.Flags().StringArrayVarP(&f.extra, "extra-vars", "e", nil, "the same -e the run was started with")
	markSecretFlags(cmd, "extra-vars")
	f.registerRun(cmd)
	f.vault.registerVault(cmd)
	return cmd
}

// varsKey reads the key of run runID's -e digest. A run recorded before runs
// had keys has a bare digest (or none), checked as it was made; this part of
// the run gets a key of its own for what it records.
func varsKey(stateDir, runID, digest string) ([]byte, error) {
	key, err := journal.ReadKey(stateDir, runID)
	if errors.Is(err, journal.ErrNoKey) && !strings.HasPrefix(digest, "hmac-") {
		return journal.CreateKey(stateDir, runID)
	}
	return key, err
}

// checkVarNames compares the names of the -e variables given with those the
// run was started with (recorded since names are not secret; values are
// not, so only their digest is checked later). Without this a missing -e
// showed as an unknown name in the runbook, which says nothing of the fix.
// Runs recorded before names were kept have none: then the digest decides.
func checkVarNames(runID string, was []string, extra []string, vf vaultFlags) error {
	if len(was) == 0 && len(extra) == 0 {
		return nil
	}
	wd, _ := os.Getwd()
	given, _, err := inventory.ParseExtraVarsWith(extra, wd, inventory.Options{Vault: vf.secrets})
	if err != nil {
		// Loading reports it, at its place and with secrets hidden.
		return nil
	}
	if len(was) == 0 {
		return nil
	}
	var missing, added []string
	for _, n := range was {
		if _, ok := given[n]; !ok {
			missing = append(missing, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(given)) {
		if !slices.Contains(was, n) {
			added = append(added, n)
		}
	}
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, fmt.Sprintf("this run was started with %s; give the same -e again (runbook resume %s %s)",
			eFlags(missing, "…"), runID, eFlags(was, "VALUE")))
	}
	if len(added) > 0 {
		msgs = append(msgs, fmt.Sprintf("this run was not started with %s; leave it out", eFlags(added, "…")))
	}
	if len(msgs) == 0 {
		return nil
	}
	return withCode(exitcode.Invalid, fmt.Errorf("cannot resume run %s: %s", runID, strings.Join(msgs, "; ")))
}

// eFlags shows -e names as "-e a=… -e b=…": names only, as values are never
// recorded.
func eFlags(names []string, value string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "-e " + n + "=" + value
	}
	return strings.Join(out, " ")
}

// writeResumeSummary says what the journal shows before anything is touched.
func writeResumeSummary(w interface{ Write([]byte) (int, error) }, st *journal.State) {
	for _, h := range st.HostList() {
		fmt.Fprintf(w, "  %-20s %s\n", h.Name, h.Status)
	}
}
