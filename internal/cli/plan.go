package cli

import (
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newPlanCmd) }

func newPlanCmd(a *app) *cobra.Command {
	var f inputFlags
	cmd := &cobra.Command{
		Use:   "plan FILE -i INVENTORY",
		Short: "Show what a run would do, without connecting anywhere",
		Long: `Show the hosts in order, the batches, each step with its guard, the rollback,
the gates and the phases, without connecting to any host. Every value known
before the run is rendered for every host and checked first, as validate -i
does; each step lists what can only be checked when it runs ("checked at run
time: url reads etcd").

--format json gives a machine-readable plan whose top-level "batches" key is a
list of lists of host names; --format mermaid gives a flowchart to paste into a
pull request.`,
		Example: `  runbook plan runbooks/upgrade-etcd.yml -i lab
  runbook plan runbooks/upgrade-etcd.yml -i prod --limit 'etcd:!etcd-3' -e etcd_version=3.7.3
  runbook plan runbooks/upgrade-etcd.yml -i lab --format json | jq .batches
  runbook plan runbooks/upgrade-etcd.yml -i lab --format mermaid`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(f.format, "text", "json", "mermaid"); err != nil {
				return err
			}
			if f.inventory == "" {
				return invalidf("plan needs an inventory: -i PATH or -i NAME (inventory/NAME.yml next to the runbook)")
			}
			l, p, ds := buildPlan(args[0], &f)
			// Diagnostics may quote a value, and -e values are secrets.
			a, flush := a.redacting(l.secrets)
			defer flush()
			if err := a.report(ds, l.sources, "text"); err != nil || p == nil {
				if err == nil {
					err = &silentError{code: exitcode.Invalid}
				}
				return err
			}
			switch f.format {
			case "json":
				return p.WriteJSON(a.stdout)
			case "mermaid":
				return p.WriteMermaid(a.stdout)
			}
			return p.WriteText(a.stdout)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&f.format, "format", "text", "output: text, json or mermaid")
	return cmd
}
