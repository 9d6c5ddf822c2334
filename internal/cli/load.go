package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/redact"
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
	vault     vaultFlags
	// importPath are the -I folders searched for imports.
	importPath []string
}

func (f *inputFlags) register(cmd *cobra.Command, withLimit bool) {
	cmd.Flags().StringVarP(&f.inventory, "inventory", "i", "", "inventory: a path, or the name of one in the runbook's inventory/ folder")
	cmd.Flags().StringArrayVarP(&f.extra, "extra-vars", "e", nil, "set variables: k=v, @file.yml or a JSON object (highest precedence; repeatable); their values are secrets: never shown or recorded")
	markSecretFlags(cmd, "extra-vars")
	if withLimit {
		cmd.Flags().StringVarP(&f.limit, "limit", "l", "", "further limit the hosts with a pattern (\"m1:m2\", \"etcd:!m3\", @file)")
	}
	f.vault.registerVault(cmd)
	cmd.Flags().StringArrayVarP(&f.importPath, "import-path", "I", nil, "a folder searched for imported files, after the importing file's folder and lib/ beside the runbook (repeatable)")
}

// loaded is a runbook read together with its inventory and vars.
type loaded struct {
	rb      *spec.Runbook
	inv     *inventory.Inventory
	extra   map[string]any
	sources diag.Sources
	// secrets are the run's secrets known at load: every -e value, every
	// value the inventory read from an encrypted source, and the controller's
	// own (RUNBOOK_SSH_PASSPHRASE). The run adds what no_log steps render.
	secrets *redact.Set
}

// load reads the inventory (when given), the -e vars and the runbook, and
// returns every diagnostic of all of them at once.
func load(file string, f *inputFlags) (*loaded, diag.Diags) {
	var ds diag.Diags
	l := &loaded{sources: diag.Sources{}, secrets: &redact.Set{}}
	l.secrets.AddControllerEnv(os.Environ())
	wd, _ := os.Getwd()
	vopts := inventory.Options{Vault: f.vault.secrets}
	extra, vaulted, err := inventory.ParseExtraVarsWith(f.extra, wd, vopts)
	if err != nil {
		// The error may quote the -e it could not read, whose values are
		// secrets all the same: hide that text, as typed and as quoted.
		for _, arg := range f.extra {
			if !strings.HasPrefix(arg, "@") {
				q := strconv.Quote(arg)
				l.secrets.Add(arg, q[1:len(q)-1])
			}
		}
		if d, ok := diag.As(err); ok {
			ds.Append(d)
		} else {
			ds.Add(diag.Pos{File: "-e"}, err.Error(), "")
		}
	}
	l.extra = extra
	l.secrets.Add(vaulted...)
	for _, vs := range f.vault.secrets {
		l.secrets.Add(string(vs.Password))
	}
	l.secrets.AddValue(extra)

	opts := spec.LoadOptions{Extra: modules.Default.FactSamples(), ImportPath: f.importPath, Sources: l.sources}
	if f.inventory != "" {
		path, err := inventory.Resolve(f.inventory, filepath.Dir(file))
		if err != nil {
			ds.Add(diag.Pos{File: "-i " + f.inventory}, err.Error(), "")
		} else {
			inv, ids := inventory.LoadWith(path, vopts)
			ds.Append(ids)
			if inv != nil {
				l.inv = inv
				l.secrets.Merge(inv.Secrets())
				for k, v := range inv.Sources() {
					l.sources[k] = v
				}
				opts.Vars = plan.MergeVars(inv.AllVarNames(), extra)
				opts.VarOrigin = varOrigin(inv, extra)
			}
		}
	}
	rb, rds := spec.Load(file, modules.Default, opts)
	ds.Append(rds)
	if src, err := input.ReadFile(file); err == nil {
		l.sources[file] = src
	}
	l.rb = rb
	redactDiags(ds, l.secrets)
	ds.Sort()
	return l, ds
}

// redactDiags takes decrypted values out of messages that quote a value.
func redactDiags(ds diag.Diags, set *redact.Set) {
	for i := range ds {
		ds[i].Summary = set.Redact(ds[i].Summary)
		ds[i].Detail = set.Redact(ds[i].Detail)
	}
}

// varOrigin says where the value of a var that expressions are checked
// against was set: -e, or the first host of the inventory that has it (whose
// value is the sample the loader checks types with). "" for the runbook's.
func varOrigin(inv *inventory.Inventory, extra map[string]any) func(string) string {
	return func(name string) string {
		if _, ok := extra[name]; ok {
			return "-e"
		}
		for _, h := range inv.Hosts() {
			if p, ok := h.VarPos(name); ok {
				return p.String()
			}
		}
		return ""
	}
}

// buildPlan loads and plans; the inventory is required.
func buildPlan(file string, f *inputFlags) (*loaded, *plan.Plan, diag.Diags) {
	return buildPlanOpts(file, f, plan.Options{}, plan.CheckOptions{})
}

// buildPlanOpts is buildPlan with more plan options; Limit and ExtraVars come
// from f. check says which steps the run selects; its Run is opts.Run.
func buildPlanOpts(file string, f *inputFlags, opts plan.Options, check plan.CheckOptions) (*loaded, *plan.Plan, diag.Diags) {
	l, ds := load(file, f)
	if ds.HasErrors() || l.rb == nil || l.inv == nil {
		return l, nil, ds
	}
	opts.Limit, opts.ExtraVars = f.limit, l.extra
	p, pds := plan.Build(l.rb, l.inv, opts)
	redactDiags(pds, l.secrets) // rendering a variable may quote a decrypted value
	ds.Append(pds)
	if p != nil {
		// The inventory's runbook_lock is checked with the rest of the input.
		_, lds := effectiveLock(p)
		ds.Append(lds)
		_, sds := effectiveState(p)
		ds.Append(sds)
		lds.Append(sds)
		// And so are the receivers of its notifications.
		_, nds := notifyTargets(p, opts.Run, l.secrets)
		ds.Append(nds)
		if lds.HasErrors() || nds.HasErrors() {
			return l, nil, ds
		}
	}
	if p != nil && !pds.HasErrors() {
		// Every value known before the run, rendered for every host and
		// decoded as the run would: a bad one is refused here, with nothing
		// touched, not on the first host after it was changed.
		check.Run = opts.Run
		cds := p.CheckValues(check)
		redactDiags(cds, l.secrets)
		ds.Append(cds)
		if cds.HasErrors() {
			return l, nil, ds
		}
	}
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
		return &silentError{code: exitcode.Invalid}
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
