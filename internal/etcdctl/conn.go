// Package etcdctl is an etcd client over etcd's own Go client, what the etcd
// modules, facts and the etcd lock store share: clients pinned to one member
// each, TLS, deadlines, the cluster view, checks, snapshots, leader moves.
// The modules' arguments that lead here are in modules/etcdarg (the
// connection) and modules/check (the check's rules).
package etcdctl

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
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

// CheckEndpoint accepts what etcd advertises as a client URL: http or https,
// host and port, no path.
func CheckEndpoint(ep string) error {
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

// Settings are the connection arguments a step or the lock store gives;
// Resolve fills what they leave out.
type Settings struct {
	Endpoints   []string // client URLs; none for the defaults of the vars and inventory
	CAFile      string
	CertFile    string
	KeyFile     string
	DialTimeout time.Duration // DefaultDialTimeout when 0
	Timeout     time.Duration // DefaultTimeout when 0
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

	// tlsID is a digest of the files TLS was made from, which tells two
	// resolutions of the same settings apart from different ones; "" when
	// TLS was not read from files by Resolve.
	tlsID string
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

// Resolve fills what c leaves out from env, reads the TLS files and
// returns the configuration clients are made from.
func Resolve(c Settings, env Env) (Config, error) {
	cfg := Config{DialTimeout: c.DialTimeout, Timeout: c.Timeout}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	eps := c.Endpoints
	if len(eps) == 0 {
		var err error
		if eps, err = DefaultEndpoints(env); err != nil {
			return Config{}, err
		}
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		ep = strings.TrimSuffix(ep, "/")
		if err := CheckEndpoint(ep); err != nil {
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
	t, id, err := tlsConfig(env.Dir, ca, cert, key)
	if err != nil {
		return Config{}, err
	}
	cfg.TLS, cfg.tlsID = t, id
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
// It also returns a digest of what it read.
func tlsConfig(dir, ca, cert, key string) (*tls.Config, string, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, "", nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	id := sha256.New()
	if ca != "" {
		path := abs(dir, ca)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("ca_file: %s holds no PEM certificate (want the CA's certificate, -----BEGIN CERTIFICATE-----)", path)
		}
		t.RootCAs = pool
		fmt.Fprintf(id, "ca %d:%s", len(pem), pem)
	}
	switch {
	case cert != "" && key != "":
		certPEM, err := os.ReadFile(abs(dir, cert))
		if err != nil {
			return nil, "", fmt.Errorf("cert_file and key_file: %w", err)
		}
		keyPEM, err := os.ReadFile(abs(dir, key))
		if err != nil {
			return nil, "", fmt.Errorf("cert_file and key_file: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, "", fmt.Errorf("cert_file and key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
		fmt.Fprintf(id, "cert %d:%skey %d:%s", len(certPEM), certPEM, len(keyPEM), keyPEM)
	case cert != "" || key != "":
		return nil, "", errors.New("cert_file and key_file go together; give both or neither")
	}
	return t, hex.EncodeToString(id.Sum(nil)), nil
}

// abs reads a controller-side path relative to dir.
func abs(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}
