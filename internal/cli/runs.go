package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/report"
)

func init() { commands = append(commands, newRunsCmd, newShowCmd) }

func newRunsCmd(a *app) *cobra.Command {
	var stateDir string
	var state stateFlag
	cmd := &cobra.Command{
		Use:     "runs",
		Short:   "List runs, newest first",
		Long:    "List the runs recorded under --state-dir, newest first: running, ended (with exit code) or crashed (resume it).",
		Example: "  runbook runs\n  runbook runs --state-dir /var/lib/runbook",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sh, err := state.get()
			if err != nil {
				return err
			}
			list, err := a.listRuns(stateDir, sh)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				where := stateDir
				if sh != nil {
					where += " nor in " + sh.String()
				}
				fmt.Fprintf(a.stderr, "no runs under %s\n", where)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tRUNBOOK\tSTARTED\tSTATUS\tHOSTS\tFAILED\tEXIT")
			for _, s := range list {
				status := string(s.Status)
				exit := "-"
				switch s.Status {
				case journal.RunEnded:
					status = string(s.Outcome)
					exit = fmt.Sprint(s.ExitCode)
				case journal.RunRunning:
					status = fmt.Sprintf("running (pid %d)", s.PID)
				case journal.RunCrashed:
					status = "crashed: resume it"
				case journal.RunDamaged:
					status = "damaged: " + s.Err.Error()
				}
				name := s.Name
				if name == "" {
					name = s.Runbook
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\n", s.ID, name, s.Started.UTC().Format(time.DateTime),
					status, s.HostsDone, s.Hosts, s.HostsFailed, exit)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".runbook", "folder for journals")
	state.register(cmd.Flags())
	return cmd
}

func newShowCmd(a *app) *cobra.Command {
	var stateDir, format string
	var state stateFlag
	cmd := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Tell the story of a run, or write its report",
		Long: `Show every step of a run from its journal as a table: time, batch, host, step,
status, duration and error.

--format writes a report of the run instead: markdown for a pull request or
a change ticket, html (one self-contained page with a timeline), junit (XML
for CI systems, a test case per host and step) or json (the same report as
a documented JSON document). Reports hold only what the journal holds, with
secrets already hidden.`,
		Example: "  runbook show 20261124T023955Z-3f9a01\n  runbook show 20261124T023955Z-3f9a01 --format html > run.html",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return runIDs(stateDir), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, append([]string{"text"}, report.Formats...)...); err != nil {
				return err
			}
			sh, err := state.get()
			if err != nil {
				return err
			}
			st, err := a.loadRun(stateDir, args[0], sh)
			if err != nil {
				if codeOf(err) != exitcode.Failed {
					return err
				}
				return withCode(exitcode.Invalid, err)
			}
			if format == "text" {
				return st.WriteStory(a.stdout)
			}
			return report.Build(st, readPlanFlow(stateDir, st.RunID)).Write(a.stdout, format)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".runbook", "folder for journals")
	state.register(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "text", "text (the story), markdown, html, junit or json")
	return cmd
}

func runIDs(stateDir string) []string {
	list, err := journal.List(stateDir)
	if err != nil {
		return nil
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	return ids
}
