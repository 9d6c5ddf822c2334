package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/modules"
)

// orderAtStart returns the plan the run uses: p, or when its order key reads
// facts (`order: 'etcd.leader == host.name ? 1 : 0'` puts the leader last) p
// with its hosts in that order. Facts only read, so this happens before the
// confirmation; the journal records the order in run_start and a resume
// keeps it.
func orderAtStart(ctx context.Context, p *plan.Plan, stateDir string) (*plan.Plan, error) {
	if !p.OrderAtStart {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ctrl := local.New()
	defer ctrl.Close()
	inv := p.EvalInventory()
	return p.OrderBy(func(h *plan.Host) (map[string]any, error) {
		out := map[string]any{}
		for _, name := range p.OrderFacts {
			f, ok := modules.Default.LookupFacts(name)
			if !ok {
				return nil, fmt.Errorf("no facts %q", name)
			}
			// Facts for ordering are read from the controller, before any
			// connection to the hosts is opened.
			v, err := f.Gather(ctx, &modules.Host{
				Name: h.Name, Addr: h.Addr, Vars: h.Vars, Conn: ctrl, Controller: ctrl,
				Log: zerolog.Nop(), StateDir: stateDir,
				Scope: &eval.Scope{Vars: h.Vars, Host: h.Eval(), Inventory: inv},
			})
			if err != nil {
				return nil, err
			}
			out[name] = v
		}
		return out, nil
	})
}
