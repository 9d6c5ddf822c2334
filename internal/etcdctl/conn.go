// Package etcdctl is what the etcd modules and facts share over etcd's own Go client:
// clients pinned to one member each, TLS, deadlines, the cluster view, checks, snapshots, leader moves.
package etcdctl

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

// Host variables read when a step leaves the connection arguments out; the
// `etcd` facts read the same ones.
const (
	VarEndpoints = "etcd_endpoints" // list of client URLs
	VarGroup     = "etcd_group"     // inventory group of the members; "etcd" when unset
	VarURL       = "etcd_url"       // a member host's client URL
	VarCAFile    = "etcd_ca_file"
	VarCertFile  = "etcd_cert_file"
	VarKeyFile   = "etcd_key_file"
	// VarUser and VarPassword log in to a cluster with auth enabled. They
	// are vars only, not step arguments: the password belongs in the
	// inventory or -e (never journaled), not in a runbook.
	VarUser      = "etcd_user"
	VarPassword  = "etcd_password"
	DefaultGroup = "etcd"
)

// Default time limits, as etcdctl's own (--dial-timeout, --command-timeout).
const (
	DefaultDialTimeout = 2 * time.Second
	DefaultTimeout     = 5 * time.Second
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
		if templated(ep) {
			https = true // unknown until rendered: do not refuse TLS files yet
			continue
		}
		if err := checkEndpoint(ep); err != nil {
			return &modules.FieldError{Field: prefix + "endpoints", Msg: err.Error()}
		}
		https = https || strings.HasPrefix(ep, "https://")
	}
	if c.Endpoints != nil && len(c.Endpoints) == 0 {
		return &modules.FieldError{Field: prefix + "endpoints", Msg: "is an empty list; give the client URL of every member, or leave endpoints out to use var " + VarEndpoints}
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

// templated reports whether s still holds a {{ }} part, which Validate leaves
// to the check made after rendering.
func templated(s string) bool { return strings.Contains(s, "{{") }

// checkEndpoint accepts what etcd advertises as a client URL: http or https,
// host and port, no path.
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("%q is not a client URL; write it as etcd advertises it, like https://10.0.0.1:2379", ep)
	case u.Hostname() == "":
		return fmt.Errorf("%q has no host", ep)
	case u.Port() == "":
		return fmt.Errorf("%q has no port; etcd's client port is usually 2379: %s://%s:2379", ep, u.Scheme, u.Hostname())
	case u.Path != "" && u.Path != "/", u.RawQuery != "":
		return fmt.Errorf("%q has a path; give the client URL alone, like %s://%s", ep, u.Scheme, u.Host)
	}
	return nil
}

// Env is what a step's connection defaults are read from.
type Env struct {
	// Vars are the host's vars (etcd_endpoints, etcd_group, etcd_ca_file...).
	Vars map[string]any
	// Inventory gives the hosts of the etcd group when etcd_endpoints is unset.
	Inventory eval.Inventory
	// Dir is the folder relative files are read from: the runbook's.
	Dir string
}

// HostEnv is the Env of the host a step runs on.
func HostEnv(h *modules.Host) Env {
	env := Env{Vars: h.Vars, Dir: h.RunbookDir}
	if h.Scope != nil {
		env.Inventory = h.Scope.Inventory
	}
	return env
}

// Config is a resolved connection: what clients are made from.
type Config struct {
	Endpoints   []string
	TLS         *tls.Config // for https endpoints; nil when no file was given
	DialTimeout time.Duration
	Timeout     time.Duration
	// Username and Password log in to a cluster with auth enabled; empty
	// for one without.
	Username string
	Password Secret
}

// Secret is a password. It prints as <hidden> however it is formatted
// (%v, %+v, %#v, JSON), so a Config in a log or an error never shows it.
type Secret string

func (Secret) String() string   { return "<hidden>" }
func (Secret) GoString() string { return "<hidden>" }

// MarshalJSON hides the password in JSON too.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"<hidden>"`), nil }

// credentials reads etcd_user and etcd_password: both or neither. Messages
// never quote the password.
func credentials(vars map[string]any) (string, Secret, error) {
	user, userSet := vars[VarUser]
	pw, pwSet := vars[VarPassword]
	userSet, pwSet = userSet && user != nil, pwSet && pw != nil
	if !userSet && !pwSet {
		return "", "", nil
	}
	u, ok := user.(string)
	if userSet && (!ok || strings.TrimSpace(u) == "") {
		return "", "", fmt.Errorf("var %s must be a user name (a non-empty string)", VarUser)
	}
	p, ok := pw.(string)
	if pwSet && (!ok || p == "") {
		return "", "", fmt.Errorf("var %s must be a non-empty string (its value is not shown)", VarPassword)
	}
	switch {
	case !pwSet:
		return "", "", fmt.Errorf("var %s is set without %s; a cluster with auth enabled needs both", VarUser, VarPassword)
	case !userSet:
		return "", "", fmt.Errorf("var %s is set without %s; a cluster with auth enabled needs both", VarPassword, VarUser)
	}
	return u, Secret(p), nil
}

// Resolve fills what the step left out from env, reads the TLS files and
// returns the configuration clients are made from.
func (c Conn) Resolve(env Env) (Config, error) {
	cfg := Config{DialTimeout: c.DialTimeout.Std(), Timeout: c.Timeout.Std()}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	eps := []string(c.Endpoints)
	if len(eps) == 0 {
		var err error
		if eps, err = DefaultEndpoints(env); err != nil {
			return Config{}, err
		}
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		ep = strings.TrimSuffix(ep, "/")
		if err := checkEndpoint(ep); err != nil {
			return Config{}, fmt.Errorf("endpoints: %w", err)
		}
		if seen[ep] {
			return Config{}, fmt.Errorf("endpoints: %s is listed twice; give each member's client URL once", ep)
		}
		seen[ep] = true
		cfg.Endpoints = append(cfg.Endpoints, ep)
	}
	ca, cert, key := c.CAFile, c.CertFile, c.KeyFile
	if ca == "" {
		ca = stringVar(env.Vars, VarCAFile)
	}
	if cert == "" && key == "" {
		cert, key = stringVar(env.Vars, VarCertFile), stringVar(env.Vars, VarKeyFile)
	}
	t, err := tlsConfig(env.Dir, ca, cert, key)
	if err != nil {
		return Config{}, err
	}
	cfg.TLS = t
	if cfg.Username, cfg.Password, err = credentials(env.Vars); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DefaultEndpoints returns the endpoints a step that names none talks to: the
// host var etcd_endpoints, else the etcd_url var of every host of the group
// in var etcd_group (etcd when unset), in inventory order.
func DefaultEndpoints(env Env) ([]string, error) {
	if v, ok := env.Vars[VarEndpoints]; ok && v != nil {
		eps, err := stringList(v)
		if err != nil || len(eps) == 0 {
			return nil, fmt.Errorf("var %s must be a list of client URLs, got %v", VarEndpoints, v)
		}
		return eps, nil
	}
	group := DefaultGroup
	if g := stringVar(env.Vars, VarGroup); g != "" {
		group = g
	}
	if env.Inventory == nil {
		return nil, fmt.Errorf("no endpoints: give endpoints, or set var %s to the members' client URLs (the inventory's group %s is not available here)", VarEndpoints, group)
	}
	hosts := env.Inventory.Group(group)
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no endpoints: group %s has no hosts; give endpoints, set var %s, or set var %s to the group of the members", group, VarEndpoints, VarGroup)
	}
	var eps []string
	for _, h := range hosts {
		u := stringVar(h.Vars, VarURL)
		if u == "" {
			return nil, fmt.Errorf("no endpoints: host %s of group %s has no var %s (its client URL, like http://%s:2379); set it, or give endpoints", h.Name, group, VarURL, hostOr(h))
		}
		eps = append(eps, u)
	}
	return eps, nil
}

func hostOr(h eval.Host) string {
	if h.Addr != "" {
		return h.Addr
	}
	return h.Name
}

func stringVar(vars map[string]any, name string) string {
	s, _ := vars[name].(string)
	return s
}

// stringList reads a var that holds a list of strings (or one string).
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("item %d is %T, not a string", i, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T is not a list", v)
}

// tlsConfig builds the client TLS configuration from PEM files; it is nil
// when no file is given (https endpoints then get a default configuration,
// which verifies against the system's CAs). Verification is never skipped.
func tlsConfig(dir, ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		path := abs(dir, ca)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate (want the CA's certificate, -----BEGIN CERTIFICATE-----)", path)
		}
		t.RootCAs = pool
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(abs(dir, cert), abs(dir, key))
		if err != nil {
			return nil, fmt.Errorf("cert_file and key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, errors.New("cert_file and key_file go together; give both or neither")
	}
	return t, nil
}

// abs reads a controller-side path relative to dir.
func abs(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}
