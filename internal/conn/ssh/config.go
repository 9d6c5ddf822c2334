package ssh

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/runbookhq/runbook/internal/conn"
)

// JumpVar is the inventory variable that names jump hosts, in ProxyJump's
// syntax ("[user@]host[:port][,...]", or "none"). Ansible has no variable for
// it (it passes -J in ansible_ssh_common_args, which runbook does not read),
// hence a runbook_ name. It wins over ProxyJump and ProxyCommand from the
// ssh config.
const JumpVar = "runbook_jump_host"

// unsupportedVars are Ansible connection variables runbook does not honour.
// A host that sets one is refused rather than reached some other way than
// the inventory says (options in extra arguments silently skipped, say).
var unsupportedVars = map[string]string{
	"ansible_ssh_common_args": "extra ssh command-line arguments are not supported: put the options in the ssh config (--ssh-config), or name jump hosts with " + JumpVar,
	"ansible_ssh_extra_args":  "extra ssh command-line arguments are not supported: put the options in the ssh config (--ssh-config), or name jump hosts with " + JumpVar,
	"ansible_ssh_args":        "extra ssh command-line arguments are not supported: put the options in the ssh config (--ssh-config)",
	"ansible_password":        "password authentication is not supported: use a key (ansible_ssh_private_key_file, --private-key) or ssh-agent",
	"ansible_ssh_pass":        "password authentication is not supported: use a key (ansible_ssh_private_key_file, --private-key) or ssh-agent",
	"ansible_ssh_executable":  "runbook speaks SSH itself and runs no ssh program",
}

// endpoint is one host to log in to, with everything decided: what the
// inventory says first, then the ssh config, then the defaults (Ansible's
// precedence, since it hands its variables to ssh as options that beat the
// config).
type endpoint struct {
	alias          string // the name the ssh config was matched against
	host           string
	port           int
	user           string
	keys           []identity
	identitiesOnly bool     // IdentitiesOnly: no agent key that is not one of keys
	knownHosts     []string // the first one records new keys
	hashKnownHosts bool
	timeout        time.Duration
	// proxyCommand is the ssh config's ProxyCommand with its tokens
	// expanded: the connection is its stdin and stdout.
	proxyCommand string
}

// identity is a private key file to offer.
type identity struct {
	path string
	// required: named by the inventory or the command line, so a missing
	// file is an error; files from the ssh config or the defaults are
	// skipped when absent, as OpenSSH does.
	required bool
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// sshConfig is a parsed ssh config file; nil reads as an empty file.
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

func loadSSHConfig(path string, required bool) (*sshConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return &sshConfig{path: path}, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	cfg, err := ssh_config.DecodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &sshConfig{path: path, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) string {
	if c == nil || c.cfg == nil {
		return ""
	}
	v, _ := c.cfg.Get(alias, key)
	return strings.TrimSpace(v)
}

// first returns which of keys comes first for alias, and its value, as
// OpenSSH reads options: the first value obtained wins, and ProxyJump and
// ProxyCommand compete, the first one written preventing the other.
func (c *sshConfig) first(alias string, keys ...string) (string, string) {
	if c == nil || c.cfg == nil {
		return "", ""
	}
	for _, host := range c.cfg.Hosts {
		if !host.Matches(alias) {
			continue
		}
		for _, node := range host.Nodes {
			switch n := node.(type) {
			case *ssh_config.KV:
				for _, k := range keys {
					if strings.EqualFold(n.Key, k) {
						return k, strings.TrimSpace(n.Value)
					}
				}
			case *ssh_config.Include:
				// The library keeps an included file's lines to itself: ask
				// for each key in turn.
				for _, k := range keys {
					if v := n.Get(alias, k); v != "" {
						return k, strings.TrimSpace(v)
					}
				}
			}
		}
	}
	return "", ""
}

func (c *sshConfig) getAll(alias, key string) []string {
	if c == nil || c.cfg == nil {
		return nil
	}
	v, _ := c.cfg.GetAll(alias, key)
	return v
}

// resolver decides endpoints from the inventory, the options and the config.
type resolver struct {
	cfg       *sshConfig
	home      string
	localUser string
	opts      *Options
}

func newResolver(cfg *sshConfig, o *Options) *resolver {
	home := o.Home
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	r := &resolver{cfg: cfg, home: home, opts: o}
	if u, err := user.Current(); err == nil {
		r.localUser = u.Username
	} else {
		r.localUser = os.Getenv("USER")
	}
	return r
}

// target returns the host's endpoint and the jump hosts to reach it through.
func (r *resolver) target(t conn.Target) (endpoint, []endpoint, error) {
	for _, name := range slices.Sorted(maps.Keys(unsupportedVars)) {
		if v, ok := t.Vars[name]; ok && v != nil && v != "" {
			return endpoint{}, nil, fmt.Errorf("%s is set, but %s", name, unsupportedVars[name])
		}
	}
	alias := t.Addr
	if alias == "" {
		alias = t.Name
	}
	var host string
	if isSet(t.Vars, "ansible_host", "ansible_ssh_host") {
		// Given by the inventory: the config's HostName does not replace it.
		host = alias
	}
	port := 0
	// The inventory's Port is 22 both when ansible_port says 22 and when
	// nothing does; only the variables (or another port) tell them apart.
	if t.Port != 0 && (t.Port != 22 || isSet(t.Vars, "ansible_port", "ansible_ssh_port")) {
		port = t.Port
	}
	var keys []identity
	if t.KeyFile != "" {
		keys = append(keys, identity{path: r.expandHome(t.KeyFile), required: true})
	}
	ep, err := r.endpoint(alias, host, port, t.User, keys)
	if err != nil {
		return endpoint{}, nil, err
	}

	var spec string
	from := "ProxyJump in " + r.cfgPath()
	if v, ok := t.Vars[JumpVar]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || strings.TrimSpace(s) == "" {
			return endpoint{}, nil, fmt.Errorf("%s: want a string: [user@]host[:port][,...] or none", JumpVar)
		}
		spec, from = s, JumpVar
	} else if ep, spec, err = r.proxy(alias, ep); err != nil {
		return endpoint{}, nil, err
	}
	jumps, err := r.jumps(spec)
	if err != nil {
		return endpoint{}, nil, fmt.Errorf("%s: %w", from, err)
	}
	// The first jump host is reached by its own ProxyCommand, if it has one,
	// as OpenSSH reaches it; a later one is reached through the jump host
	// before it, and no jump host's own ProxyJump is followed.
	if len(jumps) > 0 {
		if jumps[0], _, err = r.proxy(jumps[0].alias, jumps[0]); err != nil {
			return endpoint{}, nil, fmt.Errorf("jump host %s: %w", jumps[0].alias, err)
		}
	}
	return ep, jumps, nil
}

// proxy reads how the config says to reach alias: a ProxyJump spec to
// follow, or a ProxyCommand set on e, whichever the config names first (as
// OpenSSH does); "none" for the first found means directly.
func (r *resolver) proxy(alias string, e endpoint) (endpoint, string, error) {
	key, v := r.cfg.first(alias, "ProxyJump", "ProxyCommand")
	switch {
	case key == "ProxyJump" || strings.EqualFold(v, "none") || v == "":
		return e, v, nil
	case key == "ProxyCommand":
		cmd, err := expandProxyCommand(v, e)
		if err != nil {
			return endpoint{}, "", fmt.Errorf("%s in %s: %w", alias, r.cfgPath(), err)
		}
		e.proxyCommand = cmd
	}
	return e, "", nil
}

func (r *resolver) cfgPath() string {
	if r.cfg == nil || r.cfg.path == "" {
		return "the ssh config"
	}
	return r.cfg.path
}

// endpoint decides one endpoint: host, port, user and keys given here win;
// the config fills in what they leave empty; defaults last.
func (r *resolver) endpoint(alias, host string, port int, userName string, keys []identity) (endpoint, error) {
	e := endpoint{alias: alias, host: host, port: port, user: userName}
	if e.host == "" {
		if hn := r.cfg.get(alias, "HostName"); hn != "" {
			e.host = strings.NewReplacer("%h", alias, "%%", "%").Replace(hn)
		} else {
			e.host = alias
		}
	}
	if e.port == 0 {
		if p := r.cfg.get(alias, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return endpoint{}, fmt.Errorf("Port %q for %s in %s is not a port number", p, alias, r.cfgPath())
			}
			e.port = n
		} else {
			e.port = 22
		}
	}
	if e.user == "" {
		e.user = r.cfg.get(alias, "User")
	}
	if e.user == "" {
		e.user = r.localUser
	}
	if e.user == "" {
		return endpoint{}, fmt.Errorf("no user to log in as: set ansible_user")
	}

	e.keys = keys
	for _, k := range r.opts.IdentityFiles {
		e.keys = append(e.keys, identity{path: r.expandHome(k), required: true})
	}
	for _, k := range r.cfg.getAll(alias, "IdentityFile") {
		if strings.EqualFold(k, "none") {
			continue
		}
		e.keys = append(e.keys, identity{path: r.expand(k, e)})
	}
	e.identitiesOnly = strings.EqualFold(r.cfg.get(alias, "IdentitiesOnly"), "yes")
	if len(e.keys) == 0 && r.home != "" {
		// OpenSSH's defaults, offered only when no key is named anywhere.
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			e.keys = append(e.keys, identity{path: filepath.Join(r.home, ".ssh", n)})
		}
	}

	switch {
	case len(r.opts.KnownHostsFiles) > 0:
		for _, f := range r.opts.KnownHostsFiles {
			e.knownHosts = append(e.knownHosts, r.expandHome(f))
		}
	case r.cfg.get(alias, "UserKnownHostsFile") != "":
		for _, f := range strings.Fields(r.cfg.get(alias, "UserKnownHostsFile")) {
			if !strings.EqualFold(f, "none") {
				e.knownHosts = append(e.knownHosts, r.expand(f, e))
			}
		}
	}
	if len(e.knownHosts) == 0 {
		if r.home == "" {
			return endpoint{}, errors.New("no known_hosts file: the home folder is unknown; pass --known-hosts")
		}
		e.knownHosts = []string{filepath.Join(r.home, ".ssh", "known_hosts")}
	}
	// Read, never written: the system-wide list, as OpenSSH reads it.
	global := "/etc/ssh/ssh_known_hosts"
	if g := r.cfg.get(alias, "GlobalKnownHostsFile"); g != "" {
		global = g
	}
	for _, g := range strings.Fields(global) {
		if !strings.EqualFold(g, "none") {
			e.knownHosts = append(e.knownHosts, r.expand(g, e))
		}
	}
	e.hashKnownHosts = strings.EqualFold(r.cfg.get(alias, "HashKnownHosts"), "yes")

	e.timeout = r.opts.ConnectTimeout
	if e.timeout <= 0 {
		if s := r.cfg.get(alias, "ConnectTimeout"); s != "" && !strings.EqualFold(s, "none") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return endpoint{}, fmt.Errorf("ConnectTimeout %q for %s in %s is not a number of seconds", s, alias, r.cfgPath())
			}
			e.timeout = time.Duration(n) * time.Second
		}
	}
	if e.timeout <= 0 {
		e.timeout = DefaultConnectTimeout
	}
	return e, nil
}

// jumps parses a ProxyJump value into endpoints, each decided by the config
// for its own name. A jump host's own ProxyJump is not followed: the chain
// is the one written here.
func (r *resolver) jumps(spec string) ([]endpoint, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var out []endpoint
	for _, hop := range strings.Split(spec, ",") {
		hop = strings.TrimPrefix(strings.TrimSpace(hop), "ssh://")
		if hop == "" {
			return nil, fmt.Errorf("%q has an empty jump host", spec)
		}
		var userName string
		if i := strings.LastIndex(hop, "@"); i >= 0 {
			userName, hop = hop[:i], hop[i+1:]
		}
		host, port := hop, 0
		if strings.HasPrefix(hop, "[") || strings.Count(hop, ":") == 1 {
			h, p, err := net.SplitHostPort(hop)
			if err != nil {
				return nil, fmt.Errorf("jump host %q: %v", hop, err)
			}
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("jump host %q: %q is not a port number", hop, p)
			}
			host, port = h, n
		}
		if host == "" || strings.ContainsAny(host, " \t/") {
			return nil, fmt.Errorf("jump host %q is not [user@]host[:port]", hop)
		}
		e, err := r.endpoint(host, "", port, userName, nil)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", host, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// expand replaces OpenSSH's tokens in a path from the config.
func (r *resolver) expand(s string, e endpoint) string {
	s = strings.NewReplacer(
		"%%", "%", "%d", r.home, "%h", e.host, "%n", e.alias,
		"%p", strconv.Itoa(e.port), "%r", e.user, "%u", r.localUser,
	).Replace(s)
	return r.expandHome(s)
}

func (r *resolver) expandHome(p string) string {
	if p == "~" {
		return r.home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok && r.home != "" {
		return filepath.Join(r.home, rest)
	}
	return p
}

func isSet(vars map[string]any, names ...string) bool {
	for _, n := range names {
		if v, ok := vars[n]; ok && v != nil {
			return true
		}
	}
	return false
}
