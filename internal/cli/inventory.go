package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/inventory"
)

func init() { commands = append(commands, newInventoryCmd) }

func newInventoryCmd(a *app) *cobra.Command {
	var (
		inv         string
		list, graph bool
		host        string
		vf          vaultFlags
	)
	cmd := &cobra.Command{
		Use:   "inventory -i INVENTORY (--list | --graph [GROUP] | --host NAME)",
		Short: "Show an inventory as runbook reads it",
		Long: `Show the hosts, groups and merged variables of an inventory, in the shapes
ansible-inventory uses: --list prints JSON, --graph a tree of groups,
--host the merged variables of one host as JSON.`,
		Example: `  runbook inventory -i runbooks/inventory/lab.yml --graph
  runbook inventory -i runbooks/inventory/lab.yml --list
  runbook inventory -i runbooks/inventory/lab.yml --host etcd-1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, b := range []bool{list, graph, host != ""} {
				if b {
					n++
				}
			}
			if n != 1 {
				return invalidf("give exactly one of --list, --graph or --host NAME")
			}
			if len(args) > 0 && !graph {
				return invalidf("a GROUP argument goes with --graph only")
			}
			if inv == "" {
				return invalidf("inventory needs -i PATH")
			}
			wd, _ := os.Getwd()
			path, err := inventory.Resolve(inv, wd)
			if err != nil {
				return withCode(exitcode.Invalid, err)
			}
			i, ds := inventory.LoadWith(path, inventory.Options{Vault: vf.secrets})
			// Values from encrypted sources are shown as secrets are: redacted.
			secrets := &redact.Set{}
			if i != nil {
				secrets = i.Secrets()
			}
			a, flush := a.redacting(secrets)
			defer flush()
			if err := a.report(ds, sourcesOf(i), "text"); err != nil || i == nil {
				if err == nil {
					err = &silentError{code: exitcode.Invalid}
				}
				return err
			}
			switch {
			case list:
				return i.WriteList(a.stdout)
			case graph:
				group := "all"
				if len(args) == 1 {
					group = args[0]
				}
				return i.WriteGraph(a.stdout, group)
			default:
				if _, ok := i.Host(host); !ok {
					msg := fmt.Sprintf("no host %q in the inventory", host)
					var names []string
					for _, h := range i.Hosts() {
						names = append(names, h.Name)
					}
					if s := diag.Suggest(host, names); s != "" {
						msg += "; " + s
					}
					return invalidf("%s", msg)
				}
				out, err := i.HostVars(host)
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(out)
				return err
			}
		},
	}
	cmd.Flags().StringVarP(&inv, "inventory", "i", "", "inventory path or name")
	cmd.Flags().BoolVar(&list, "list", false, "print all hosts, groups and vars as JSON")
	cmd.Flags().BoolVar(&graph, "graph", false, "print the group tree")
	cmd.Flags().StringVar(&host, "host", "", "print the merged vars of one host as JSON")
	vf.registerVault(cmd)
	return cmd
}

func sourcesOf(i *inventory.Inventory) diag.Sources {
	if i == nil {
		return nil
	}
	return i.Sources()
}
