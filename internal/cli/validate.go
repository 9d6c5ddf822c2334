package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/redact"
)

func init() { commands = append(commands, newValidateCmd) }

func newValidateCmd(a *app) *cobra.Command {
	var f inputFlags
	cmd := &cobra.Command{
		Use:   "validate FILE... [-i INVENTORY]",
		Short: "Check runbooks without touching anything",
		Long: `Check runbooks strictly: YAML, keys, module arguments, durations, batch sizes,
every expression and template. All errors are reported at once, each as
FILE:LINE:COL: message. With -i the host pattern is resolved, every name an
expression uses must exist in the runbook, the inventory or -e, and every
template whose inputs are known before a run (vars, inventory, -e, host, run)
is rendered for every host and checked as the module would check it at run
time: a bad value is reported at its template, with the hosts and where the
value was set. Templates that read facts or registered results wait for the
run; 'runbook plan' lists them.

Exit status 0 when every file is valid, 2 when any is not.`,
		Example: `  runbook validate runbooks/upgrade-etcd.yml
  runbook validate runbooks/*.yml -i lab
  runbook validate runbooks/upgrade-etcd.yml -i lab --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := checkFormat(f.format, "text", "json"); err != nil {
				return err
			}
			var all diag.Diags
			src := diag.Sources{}
			// Diagnostics may quote a value, and -e values are secrets.
			secrets := &redact.Set{}
			a, flush := a.redacting(secrets)
			defer flush()
			for _, file := range files {
				var ds diag.Diags
				var l *loaded
				if f.inventory != "" {
					l, _, ds = buildPlan(file, &f)
				} else {
					l, ds = load(file, &f)
				}
				secrets.Merge(l.secrets)
				for k, v := range l.sources {
					src[k] = v
				}
				all.Append(ds)
				if !ds.HasErrors() && f.format == "text" {
					fmt.Fprintf(a.stdout, "%s: valid\n", file)
				}
			}
			if f.format == "json" {
				diag.WriteJSON(a.stdout, all, src)
				if all.HasErrors() {
					return &silentError{code: exitcode.Invalid}
				}
				return nil
			}
			return a.report(all, src, f.format)
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&f.format, "format", "text", "output: text or json")
	return cmd
}
