package cli

import (
	"context"
	"time"

	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/plan"
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
	return p.OrderByFacts(ctx, ctrl, stateDir)
}
