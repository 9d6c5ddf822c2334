package spec

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// Lock is a runbook's `lock:`: where its runs keep their run lock, and a lock
// every run of it takes besides its hosts'.
type Lock struct {
	Pos diag.Pos
	// Name, when set, is one more lock every run of the runbook takes: host
	// locks alone let two runs limited to different members of one cluster
	// run at once.
	Name string
	// Dir, when set, is the folder of the file store (absolute), instead of
	// the state folder's locks/: operators who each keep their own state
	// folder on one controller share it.
	Dir string
	// Etcd, when set, keeps the locks in an etcd cluster; else they are files.
	Etcd *EtcdLock
}

// EtcdLock is `lock.etcd:`: the cluster that keeps the locks as leases.
type EtcdLock struct {
	Pos       diag.Pos
	Endpoints []string
	// Prefix is put before every key; it starts and ends with "/".
	Prefix string
	// TTL is how long the locks outlive a controller that died.
	TTL                       time.Duration
	CAFile, CertFile, KeyFile string // on the controller, relative to the runbook's folder
	DialTimeout               time.Duration
}

// Limits of lock.etcd.ttl: a lease shorter than MinLockTTL may expire between
// two keep-alives of a busy controller; one longer than MaxLockTTL keeps the
// hosts of a dead controller locked for too long.
const (
	DefaultLockTTL    = 15 * time.Second
	MinLockTTL        = 3 * time.Second
	MaxLockTTL        = 10 * time.Minute
	DefaultLockPrefix = "/runbook/locks/"
)

type lockKeys struct {
	Name *yaml.Node `yaml:"name"`
	Dir  *yaml.Node `yaml:"dir"`
	Etcd *yaml.Node `yaml:"etcd"`
}

type etcdLockKeys struct {
	Endpoints   *yaml.Node   `yaml:"endpoints" runbook:"required"`
	Prefix      *yaml.Node   `yaml:"prefix"`
	TTL         *yaml.Node   `yaml:"ttl"`
	CAFile      string       `yaml:"ca_file"`
	CertFile    string       `yaml:"cert_file"`
	KeyFile     string       `yaml:"key_file"`
	DialTimeout arg.Duration `yaml:"dial_timeout"`
}

// loadLock reads `lock:`. Its values are plain text: the lock is taken before
// any host's variables are rendered, so a template has nothing to render from.
func (l *loader) loadLock(rb *Runbook, n *yaml.Node) {
	if n == nil || n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.ds.Add(l.pos(n), fmt.Sprintf("\"lock\" must be a mapping, got %s", arg.Describe(n)),
			"for example: lock: { name: etcd-prod }, or lock: { etcd: { endpoints: [https://10.0.0.1:2379] } }")
		return
	}
	lk := &Lock{Pos: l.pos(n)}
	var k lockKeys
	l.decodeKey(n, &k, "lock")
	if v := arg.Resolve(k.Name); v != nil {
		l.decodeKey(v, &lk.Name, "lock.name")
		if v.Kind == yaml.ScalarNode && lk.Name != "" {
			if msg := badLockName(lk.Name); msg != "" {
				l.ds.Add(l.pos(v), "\"lock.name\" "+msg, "a name like etcd-prod: letters, digits, '.', '_' and '-'")
			}
		} else if v.Kind == yaml.ScalarNode {
			l.ds.Errorf(l.pos(v), "\"lock.name\" must be a name, got an empty string")
		}
	}
	if v := arg.Resolve(k.Dir); v != nil && v.ShortTag() != "!!null" {
		l.decodeKey(v, &lk.Dir, "lock.dir")
		if v.Kind == yaml.ScalarNode && (!filepath.IsAbs(lk.Dir) || strings.Contains(lk.Dir, "{{")) {
			l.ds.Add(l.pos(v), fmt.Sprintf("\"lock.dir\" must be an absolute folder, got %q", lk.Dir),
				"the one folder every operator of this controller uses, like /var/lib/runbook/locks")
			lk.Dir = ""
		}
	}
	if v := arg.Resolve(k.Etcd); v != nil && v.ShortTag() != "!!null" {
		lk.Etcd = l.loadEtcdLock(v)
		if lk.Dir != "" {
			l.ds.Add(l.pos(v), "\"lock\" has both dir and etcd", "the locks live in one store: files in dir, or leases in etcd")
		}
	}
	rb.Lock = lk
}

func badLockName(s string) string {
	if strings.Contains(s, "{{") {
		return "cannot be a template: the lock is taken before any variable is rendered"
	}
	if len(s) > 128 {
		return "is longer than 128 characters"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("has %q", r)
		}
	}
	return ""
}

func (l *loader) loadEtcdLock(n *yaml.Node) *EtcdLock {
	e := &EtcdLock{Pos: l.pos(n), Prefix: DefaultLockPrefix, TTL: DefaultLockTTL}
	if n.Kind != yaml.MappingNode {
		l.ds.Add(l.pos(n), fmt.Sprintf("\"lock.etcd\" must be a mapping, got %s", arg.Describe(n)),
			"for example: etcd: { endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379], ttl: 15s }")
		return e
	}
	var k etcdLockKeys
	l.decodeKey(n, &k, "lock.etcd")
	e.CAFile, e.CertFile, e.KeyFile, e.DialTimeout = k.CAFile, k.CertFile, k.KeyFile, k.DialTimeout.Std()

	https, http := false, false
	if v := arg.Resolve(k.Endpoints); v != nil {
		var eps arg.StringList
		l.decodeKey(v, &eps, "lock.etcd.endpoints")
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 || v.ShortTag() == "!!null" {
			l.ds.Add(l.pos(v), "\"lock.etcd.endpoints\" is empty",
				"give the client URL of every member of the cluster that keeps the locks, like [https://10.0.0.1:2379, https://10.0.0.2:2379]")
		}
		seen := map[string]bool{}
		for i, ep := range eps {
			pos := l.pos(v)
			if v.Kind == yaml.SequenceNode && i < len(v.Content) {
				pos = l.pos(v.Content[i])
			}
			ep = strings.TrimSuffix(ep, "/")
			if msg := badEndpoint(ep); msg != "" {
				l.ds.Add(pos, "\"lock.etcd.endpoints\": "+msg, "write each member's client URL as etcd advertises it, like https://10.0.0.1:2379")
				continue
			}
			if seen[ep] {
				l.ds.Errorf(pos, "\"lock.etcd.endpoints\": %s is listed twice", ep)
				continue
			}
			seen[ep] = true
			https = https || strings.HasPrefix(ep, "https://")
			http = http || strings.HasPrefix(ep, "http://")
			e.Endpoints = append(e.Endpoints, ep)
		}
	}
	if v := arg.Resolve(k.Prefix); v != nil {
		var p string
		l.decodeKey(v, &p, "lock.etcd.prefix")
		if v.Kind == yaml.ScalarNode {
			if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || len(p) < 2 || strings.ContainsAny(p, " \t\n") || strings.Contains(p, "{{") {
				l.ds.Add(l.pos(v), fmt.Sprintf("\"lock.etcd.prefix\" must be a key prefix that starts and ends with \"/\", got %q", p),
					"for example: /runbook/locks/")
			} else {
				e.Prefix = p
			}
		}
	}
	if v := arg.Resolve(k.TTL); v != nil {
		var d arg.Duration
		l.decodeKey(v, &d, "lock.etcd.ttl")
		if d != 0 && (d.Std() < MinLockTTL || d.Std() > MaxLockTTL) {
			l.ds.Add(l.pos(v), fmt.Sprintf("\"lock.etcd.ttl\" must be between %s and %s, got %s", MinLockTTL, MaxLockTTL, d),
				"15s keeps a dead controller's hosts locked for 15s and survives a busy controller's late keep-alive")
		} else if d != 0 {
			e.TTL = d.Std()
		}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		field, other := "cert_file", "key_file"
		if e.CertFile == "" {
			field, other = "key_file", "cert_file"
		}
		l.ds.Add(e.Pos, fmt.Sprintf("\"lock.etcd.%s\" is given without %s", field, other), "a client certificate needs both")
	}
	if http && https {
		l.ds.Add(e.Pos, "\"lock.etcd.endpoints\" mixes http:// and https:// URLs", "a cluster serves its clients one way: give all its URLs as it advertises them")
	}
	if http && !https {
		for _, f := range []struct{ name, v string }{{"ca_file", e.CAFile}, {"cert_file", e.CertFile}} {
			if f.v != "" {
				l.ds.Add(e.Pos, fmt.Sprintf("\"lock.etcd.%s\" is only used with https:// endpoints, and every endpoint is http://", f.name), "")
			}
		}
	}
	for _, f := range []struct{ name, v string }{{"ca_file", e.CAFile}, {"cert_file", e.CertFile}, {"key_file", e.KeyFile}} {
		if strings.Contains(f.v, "{{") {
			l.ds.Add(e.Pos, fmt.Sprintf("\"lock.etcd.%s\" cannot be a template: the lock is taken before any variable is rendered", f.name), "")
		}
	}
	return e
}

// badEndpoint says what is wrong with an etcd client URL, or "".
func badEndpoint(ep string) string {
	if strings.Contains(ep, "{{") {
		return fmt.Sprintf("%q cannot be a template: the lock is taken before any variable is rendered", ep)
	}
	u, err := url.Parse(ep)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Sprintf("%q is not a client URL", ep)
	case u.Hostname() == "":
		return fmt.Sprintf("%q has no host", ep)
	case u.Port() == "":
		return fmt.Sprintf("%q has no port (etcd's client port is usually 2379)", ep)
	case u.Path != "" || u.RawQuery != "" || u.User != nil:
		return fmt.Sprintf("%q has more than a scheme, a host and a port", ep)
	}
	return ""
}

// DecodeLock checks a lock setting given as a plain value (an inventory
// variable) as `lock:` is checked in a runbook. Its diagnostics have no line:
// the caller places them at the variable.
func DecodeLock(v any) (*Lock, diag.Diags) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		var ds diag.Diags
		ds.Errorf(diag.Pos{}, "cannot read it: %v", err)
		return nil, ds
	}
	l := &loader{d: &arg.Decoder{}}
	rb := &Runbook{}
	l.loadLock(rb, &n)
	if l.ds.HasErrors() {
		return nil, l.ds
	}
	return rb.Lock, l.ds
}
