// Package etcdarg holds the arguments the etcd modules share: how a step
// reaches the cluster. It checks them as written and resolves them, with the
// host's vars and the inventory, into the configuration of internal/etcdctl,
// the etcd client.
package etcdarg

import (
	"strings"

	"github.com/runbookhq/runbook/internal/etcdctl"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// Conn is how a step reaches the cluster; every etcd section embeds it inline.
type Conn struct {
	Endpoints   arg.StringList `yaml:"endpoints" default:"<var etcd_endpoints, else etcd_url of each host of group etcd>" doc:"client URLs of the members (one URL or a list), such as '{{ group(\"etcd\") | map(#.vars.etcd_url) }}'"`
	CAFile      string         `yaml:"ca_file" default:"<var etcd_ca_file>" doc:"PEM file on the controller, relative to the runbook's folder, with the CA of the members' certificates; https endpoints without it are checked against the system's CAs"`
	CertFile    string         `yaml:"cert_file" default:"<var etcd_cert_file>" doc:"client certificate (PEM) on the controller, for members that require one"`
	KeyFile     string         `yaml:"key_file" default:"<var etcd_key_file>" doc:"private key (PEM) of cert_file"`
	DialTimeout arg.Duration   `yaml:"dial_timeout" default:"2s" doc:"time limit to connect to one member"`
	Timeout     arg.Duration   `yaml:"timeout" default:"5s" doc:"time limit of each request to one member"`
}

// Validate checks the connection arguments as written; prefix names the
// section in errors ("etcd.").
func (c *Conn) Validate(prefix string) error {
	https := false
	for _, ep := range c.Endpoints {
		if Templated(ep) {
			https = true // unknown until rendered: do not refuse TLS files yet
			continue
		}
		if err := etcdctl.CheckEndpoint(ep); err != nil {
			return &modules.FieldError{Field: prefix + "endpoints", Msg: err.Error()}
		}
		https = https || strings.HasPrefix(ep, "https://")
	}
	if c.Endpoints != nil && len(c.Endpoints) == 0 {
		return &modules.FieldError{Field: prefix + "endpoints", Msg: "is an empty list; give the client URL of every member, or leave endpoints out to use var " + etcdctl.VarEndpoints}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		field, other := "cert_file", "key_file"
		if c.CertFile == "" {
			field, other = "key_file", "cert_file"
		}
		return &modules.FieldError{Field: prefix + field, Msg: "is given without " + other + "; a client certificate needs both"}
	}
	if len(c.Endpoints) > 0 && !https {
		for _, f := range []struct{ name, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}} {
			if f.v != "" {
				return &modules.FieldError{Field: prefix + f.name, Msg: "is only used with https:// endpoints, and every endpoint is http://"}
			}
		}
	}
	return nil
}

// Resolve fills what the step left out from env, reads the TLS files and
// returns the configuration clients are made from.
func (c Conn) Resolve(env etcdctl.Env) (etcdctl.Config, error) {
	return etcdctl.Resolve(etcdctl.Settings{Endpoints: c.Endpoints, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		DialTimeout: c.DialTimeout.Std(), Timeout: c.Timeout.Std()}, env)
}

// Templated reports whether s still holds a {{ }} part, which Validate leaves
// to the check made after rendering.
func Templated(s string) bool { return strings.Contains(s, "{{") }

// HostEnv is the Env of the host a step runs on.
func HostEnv(h *modules.Host) etcdctl.Env {
	env := etcdctl.Env{Vars: h.Vars, Dir: h.RunbookDir}
	if h.Scope != nil {
		env.Inventory = h.Scope.Inventory
	}
	return env
}
