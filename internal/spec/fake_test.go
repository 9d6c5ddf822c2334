package spec

import (
	"context"
	"errors"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// fakeRun makes the small argument structs below modules: the loader only
// decodes and validates them, so Run is never called.
func fakeRun() (modules.Result, error) {
	return modules.Result{}, errors.New("a test module does not run")
}

type serviceArgs struct {
	Service string       `yaml:"service" runbook:"required"`
	Wait    arg.Duration `yaml:"wait"`
}

func (*serviceArgs) Run(context.Context, *modules.Host) (modules.Result, error) { return fakeRun() }

type swapArgs struct {
	Src     string       `yaml:"src"`
	Dest    string       `yaml:"dest"`
	Mode    arg.FileMode `yaml:"mode"`
	Restore string       `yaml:"restore"`
}

func (*swapArgs) Run(context.Context, *modules.Host) (modules.Result, error) { return fakeRun() }

func (a *swapArgs) Validate() error {
	switch {
	case a.Restore != "" && (a.Src != "" || a.Dest != ""):
		return &modules.FieldError{Field: "restore", Msg: "cannot be used with src and dest"}
	case a.Restore == "" && a.Dest == "":
		return errors.New("needs dest and src, or restore")
	case a.Dest != "" && !strings.HasPrefix(a.Dest, "/"):
		return &modules.FieldError{Field: "dest", Msg: "must be an absolute path"}
	}
	return nil
}

type commandArgs struct {
	Cmd     arg.Argv          `yaml:"cmd" runbook:"required"`
	Env     map[string]string `yaml:"env"`
	Retries int               `yaml:"retries"`
	Creates string            `yaml:"creates"`
}

func (*commandArgs) Run(context.Context, *modules.Host) (modules.Result, error) { return fakeRun() }

// DecodeNode accepts the shorthand `command: "etcdctl endpoint health"`.
func (a *commandArgs) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind == yaml.ScalarNode {
		d.DecodeValue(n, &a.Cmd, ds)
		return
	}
	type plain commandArgs
	d.DecodeValue(n, (*plain)(a), ds)
}

type etcdCheck struct {
	Endpoints   any  `yaml:"endpoints"`
	Consistency bool `yaml:"consistency"`
	Dest        string
}

type checkArgs struct {
	Etcd   *etcdCheck `yaml:"etcd"`
	Expect arg.Expr   `yaml:"expect"`
}

func (*checkArgs) Run(context.Context, *modules.Host) (modules.Result, error) { return fakeRun() }

type metricArgs struct {
	URL    string       `yaml:"url" runbook:"required"`
	Expect arg.Expr     `yaml:"expect" runbook:"required"`
	For    arg.Duration `yaml:"for"`
}

func (*metricArgs) Run(context.Context, *modules.Host) (modules.Result, error) { return fakeRun() }

func (*metricArgs) ExprNames(field string) map[string]any {
	if field != "expect" {
		return nil
	}
	return map[string]any{"etcd_server_has_leader": 1.0, "metric": func(name string) float64 { return 0 }}
}

// testRegistry holds a few small modules shaped like the real ones.
func testRegistry() *modules.Registry {
	r := &modules.Registry{}
	for name, New := range map[string]func() modules.Module{
		"stop":          func() modules.Module { return &serviceArgs{} },
		"start":         func() modules.Module { return &serviceArgs{} },
		"swap":          func() modules.Module { return &swapArgs{} },
		"command":       func() modules.Module { return &commandArgs{} },
		"check":         func() modules.Module { return &checkArgs{} },
		"snapshot":      func() modules.Module { return &checkArgs{} },
		"assert-metric": func() modules.Module { return &metricArgs{} },
	} {
		r.Register(modules.Info{Name: name, New: New})
	}
	return r
}
