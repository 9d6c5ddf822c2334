package spec

import (
	"errors"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// fakeRegistry holds a few small argument structs shaped like the real modules.
type fakeRegistry map[string]func() any

func (r fakeRegistry) NewArgs(name string) (any, bool) {
	f, ok := r[name]
	if !ok {
		return nil, false
	}
	return f(), true
}

func (r fakeRegistry) Names() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type serviceArgs struct {
	Service string       `yaml:"service" runbook:"required"`
	Wait    arg.Duration `yaml:"wait"`
}

type swapArgs struct {
	Src     string       `yaml:"src"`
	Dest    string       `yaml:"dest"`
	Mode    arg.FileMode `yaml:"mode"`
	Restore string       `yaml:"restore"`
}

type fieldErr struct{ field, msg string }

func (e *fieldErr) Error() string     { return e.field + ": " + e.msg }
func (e *fieldErr) FieldName() string { return e.field }

func (a *swapArgs) Validate() error {
	switch {
	case a.Restore != "" && (a.Src != "" || a.Dest != ""):
		return &fieldErr{"restore", "cannot be used with src and dest"}
	case a.Restore == "" && a.Dest == "":
		return errors.New("needs dest and src, or restore")
	case a.Dest != "" && !strings.HasPrefix(a.Dest, "/"):
		return &fieldErr{"dest", "must be an absolute path"}
	}
	return nil
}

type commandArgs struct {
	Cmd     arg.Argv          `yaml:"cmd" runbook:"required"`
	Env     map[string]string `yaml:"env"`
	Retries int               `yaml:"retries"`
	Creates string            `yaml:"creates"`
}

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

type metricArgs struct {
	URL    string       `yaml:"url" runbook:"required"`
	Expect arg.Expr     `yaml:"expect" runbook:"required"`
	For    arg.Duration `yaml:"for"`
}

func (*metricArgs) ExprNames(field string) map[string]any {
	if field != "expect" {
		return nil
	}
	return map[string]any{"etcd_server_has_leader": 1.0, "metric": func(name string) float64 { return 0 }}
}

func testRegistry() fakeRegistry {
	return fakeRegistry{
		"stop":          func() any { return &serviceArgs{} },
		"start":         func() any { return &serviceArgs{} },
		"swap":          func() any { return &swapArgs{} },
		"command":       func() any { return &commandArgs{} },
		"check":         func() any { return &checkArgs{} },
		"snapshot":      func() any { return &checkArgs{} },
		"assert-metric": func() any { return &metricArgs{} },
	}
}
