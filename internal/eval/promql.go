package eval

import (
	"context"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/internal/promql"
)

// PrometheusVar is the var that names the Prometheus server promql() asks
// when the scope sets no server of its own.
const PrometheusVar = "prometheus_url"

// promqlTimeout bounds one promql() call: an expression has no context.
const promqlTimeout = 10 * time.Second

var promqlFunc = &function{
	doc: FuncDoc{Name: "promql", Signature: "promql(query string) float",
		Doc:     "the one number a PromQL query gives now, from the Prometheus server at the var prometheus_url (in assert-metric: its prometheus); no series of names that exist is 0",
		Example: `promql("sum(up{job=\"etcd\"})") == 3`},
	sample: (func(string) (float64, error))(nil),
	bound: func(s *Scope) any {
		return func(query string) (float64, error) { return s.promql(query) }
	},
	literal: func(i int, s string) error {
		if i != 0 {
			return nil
		}
		return promql.Check(s)
	},
}

func init() { functions = append(functions, promqlFunc) }

func (s *Scope) promql(query string) (float64, error) {
	if s.PromQL != nil {
		return s.PromQL(query)
	}
	u, _ := s.Vars[PrometheusVar].(string)
	if u == "" {
		return 0, fmt.Errorf("promql(%q): no Prometheus server: set the var %s (-e %s=http://127.0.0.1:9090)", query, PrometheusVar, PrometheusVar)
	}
	c, err := promql.New(promql.Config{URL: u, Timeout: promqlTimeout})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), promqlTimeout)
	defer cancel()
	return c.Number(ctx, query, time.Time{})
}
