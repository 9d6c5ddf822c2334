package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules"
	_ "github.com/runbookhq/runbook/modules/builtin" // every built-in module registers itself
)

func init() {
	commands = append(commands, newModulesCmd, newDocCmd)
}

func newModulesCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "modules",
		Short:   "List the step modules",
		Example: "  runbook modules\n  runbook doc swap",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return modules.WriteList(a.stdout, modules.Default)
		},
	}
}

// docTopics are the pages of `runbook doc` that are not modules.
var docTopics = map[string]string{
	"expressions": "the expression language: names in scope, templates, functions",
}

func newDocCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doc MODULE|TOPIC",
		Short: "Show the documentation of a module or topic",
		Long: `Show a module's arguments, what its automatic rollback does and an example,
or a topic: ` + strings.Join(sortedKeys(docTopics), ", ") + `.`,
		Example: "  runbook doc swap\n  runbook doc expressions",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return append(modules.Default.Names(), sortedKeys(docTopics)...), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == "expressions" {
				return writeExpressionDoc(a.stdout)
			}
			info, ok := modules.Default.Lookup(name)
			if !ok {
				names := append(modules.Default.Names(), sortedKeys(docTopics)...)
				msg := fmt.Sprintf("no module or topic %q", name)
				if s := diag.Suggest(name, names); s != "" {
					msg += "; " + s
				} else {
					msg += "; run 'runbook modules' to list them"
				}
				return invalidf("%s", msg)
			}
			return modules.WriteDoc(a.stdout, info)
		},
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
