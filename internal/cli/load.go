package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
)

// inputFlags are the flags of every command that reads a runbook and an inventory.
type inputFlags struct {
	inventory string
	limit     string
	extra     []string
	format    string
}

func (f *inputFlags) register(cmd *cobra.Command, withLimit bool) {
	cmd.Flags().StringVarP(&f.inventory, "inventory", "i", "", "inventory: a path, or the name of one in the runbook's inventory/ folder")
	cmd.Flags().StringArrayVarP(&f.extra, "extra-vars", "e", nil, "set variables: k=v, @file.yml or a JSON object (highest precedence; repeatable)")
	if withLimit {
		cmd.Flags().StringVarP(&f.limit, "limit", "l", "", "further limit the hosts with a pattern (\"m1:m2\", \"etcd:!m3\", @file)")
	}
}

// loaded is a runbook read together with its inventory and vars.
type loaded struct {
	rb      *spec.Runbook
	inv     *inventory.Inventory
	extra   map[string]any
	sources diag.Sources
}

// load reads the inventory (when given), the -e vars and the runbook, and
// returns every diagnostic of all of them at once.
func load(file string, f *inputFlags) (*loaded, diag.Diags) {
	var ds diag.Diags
	l := &loaded{sources: diag.Sources{}}
	wd, _ := os.Getwd()
	extra, err := inventory.ParseExtraVars(f.extra, wd)
	if err != nil {
		ds.Add(diag.Pos{File: "-e"}, err.Error(), "")
	}
	l.extra = extra

	opts := spec.LoadOptions{Extra: modules.Default.FactSamples()}
	if f.inventory != "" {
		path, err := inventory.Resolve(f.inventory, filepath.Dir(file))
		if err != nil {
			ds.Add(diag.Pos{File: "-i " + f.inventory}, err.Error(), "")
		} else {
			inv, ids := inventory.Load(path)
			ds.Append(ids)
			if inv != nil {
				l.inv = inv
				for k, v := range inv.Sources() {
					l.sources[k] = v
				}
				opts.Vars = plan.MergeVars(inv.AllVarNames(), extra)
			}
		}
	}
	rb, rds := spec.Load(file, modules.Default, opts)
	ds.Append(rds)
	if src, err := input.ReadFile(file); err == nil {
		l.sources[file] = src
	}
	l.rb = rb
	ds.Sort()
	return l, ds
}

// buildPlan loads and plans; the inventory is required.
func buildPlan(file string, f *inputFlags) (*loaded, *plan.Plan, diag.Diags) {
	return buildPlanOpts(file, f, plan.Options{})
}

// buildPlanOpts is buildPlan with more plan options; Limit and ExtraVars come from f.
func buildPlanOpts(file string, f *inputFlags, opts plan.Options) (*loaded, *plan.Plan, diag.Diags) {
	l, ds := load(file, f)
	if ds.HasErrors() || l.rb == nil || l.inv == nil {
		return l, nil, ds
	}
	opts.Limit, opts.ExtraVars = f.limit, l.extra
	p, pds := plan.Build(l.rb, l.inv, opts)
	ds.Append(pds)
	return l, p, ds
}

// report prints diagnostics as text or JSON, and returns the exit error for them.
func (a *app) report(ds diag.Diags, src diag.Sources, format string) error {
	if len(ds) == 0 {
		return nil
	}
	if format == "json" {
		diag.WriteJSON(a.stdout, ds, src)
	} else {
		diag.WriteText(a.stderr, ds, src)
	}
	if ds.HasErrors() {
		return &silentError{code: ExitInvalid}
	}
	return nil
}

func checkFormat(format string, allowed ...string) error {
	for _, f := range allowed {
		if format == f {
			return nil
		}
	}
	msg := "--format must be one of"
	for i, f := range allowed {
		if i > 0 {
			msg += ","
		}
		msg += " " + f
	}
	return invalidf("%s, got %q", msg, format)
}
