package inventory

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

// connSettings are a host's connection variables, parsed and validated once.
type connSettings struct {
	addr       string
	port       int
	user       string
	connection string
	keyFile    string
	become     bool
	becomeUser string
}

// Addr is where to connect: ansible_host (or ansible_ssh_host), else the host's name.
func (h *Host) Addr() string {
	if h.conn.addr != "" {
		return h.conn.addr
	}
	return h.Name
}

// Port is ansible_port (or ansible_ssh_port, or the :port of the host entry); 22 by default.
func (h *Host) Port() int {
	if h.conn.port != 0 {
		return h.conn.port
	}
	return 22
}

// User is ansible_user (or ansible_ssh_user); empty when unset, and the
// transport then decides (ssh config, then the current user).
func (h *Host) User() string { return h.conn.user }

// Connection is "local" or "ssh": ansible_connection, else "local" for a host
// named localhost with no ansible_host (Ansible's implicit localhost), else "ssh".
func (h *Host) Connection() string {
	if h.conn.connection != "" {
		return h.conn.connection
	}
	return "ssh"
}

// KeyFile is ansible_ssh_private_key_file (or ansible_private_key_file), with a
// leading ~/ expanded; empty when unset.
func (h *Host) KeyFile() string { return h.conn.keyFile }

// Become is ansible_become: run commands through sudo.
func (h *Host) Become() bool { return h.conn.become }

// BecomeUser is ansible_become_user; empty means root.
func (h *Host) BecomeUser() string { return h.conn.becomeUser }

// WithVars returns a copy of the host whose variables are overlaid with over, as
// -e extra vars are in Ansible (they win over everything, and a map replaces a
// map). The connection variables are parsed again, so -e ansible_user=deploy
// works, and a bad value is an error naming the host.
func (h *Host) WithVars(over map[string]any) (*Host, error) {
	nh := *h
	nh.Vars = maps.Clone(h.Vars)
	nh.varPos = maps.Clone(h.varPos)
	if nh.Vars == nil {
		nh.Vars = map[string]any{}
	}
	for k, v := range over {
		nh.Vars[k] = v
		delete(nh.varPos, k)
	}
	conn, ds := parseConn(h.Name, nh.Vars, nh.varPos)
	if ds.HasErrors() {
		return nil, fmt.Errorf("host %q: %w", h.Name, ds.Err())
	}
	nh.conn = conn
	return &nh, nil
}

// winner returns the value of the last of names that is set and not null, as
// Ansible's option lookup does (ansible_ssh_port beats ansible_port).
func winner(vars map[string]any, names ...string) (name string, v any, ok bool) {
	for _, n := range names {
		if x, set := vars[n]; set && x != nil {
			name, v, ok = n, x, true
		}
	}
	return name, v, ok
}

// passwordVars are Ansible's password variables. runbook uses none of them,
// and ignoring one would log in or become root some other way than the
// inventory says (or fail later, on a host, with sudo asking for it).
var passwordVars = []string{
	"ansible_password", "ansible_ssh_pass", "ansible_ssh_password",
	"ansible_become_password", "ansible_become_pass", "ansible_sudo_pass", "ansible_sudo_password",
	"ansible_su_pass", "ansible_su_password",
}

var connectionTypes = map[string]string{
	"local": "local", "ansible.builtin.local": "local", "ansible.legacy.local": "local",
	"ssh": "ssh", "ansible.builtin.ssh": "ssh", "ansible.legacy.ssh": "ssh", "smart": "ssh",
	"paramiko": "ssh", "paramiko_ssh": "ssh", "ansible.builtin.paramiko_ssh": "ssh",
}

// parseConn reads and checks the connection variables of a host. Diagnostics
// point at where the offending value was set and do not name the host, so
// that a bad group variable is reported once, not once per host.
func parseConn(hostName string, vars map[string]any, pos map[string]diag.Pos) (connSettings, diag.Diags) {
	var c connSettings
	var ds diag.Diags
	bad := func(name, summary, detail string) { ds.Add(pos[name], name+": "+summary, detail) }
	str := func(names ...string) string {
		name, v, ok := winner(vars, names...)
		if !ok {
			return ""
		}
		s, err := scalarString(v)
		if err != "" {
			bad(name, err, "want a string")
			return ""
		}
		if strings.TrimSpace(s) == "" {
			bad(name, "must not be empty", "")
			return ""
		}
		if strings.Contains(s, "{{") {
			bad(name, fmt.Sprintf("%q is a template", s),
				"inventory variables are not templated: write the value itself")
			return ""
		}
		return s
	}

	for _, name := range passwordVars {
		if v, set := vars[name]; set && v != nil {
			// The line is not shown: it holds the password.
			ds.AddSecret(pos[name], name+": passwords in inventories are not supported",
				"runbook logs in with keys (ansible_ssh_private_key_file, --private-key) or ssh-agent, "+
					"and becomes another user with sudo -n, which never asks for a password: "+
					"remove the variable and give the user passwordless sudo")
		}
	}

	c.addr = str("ansible_host", "ansible_ssh_host")
	if strings.ContainsAny(c.addr, " \t\r\n") {
		name, _, _ := winner(vars, "ansible_host", "ansible_ssh_host")
		bad(name, fmt.Sprintf("%q is not a host name or address", c.addr), "remove the spaces")
		c.addr = ""
	}
	if name, v, ok := winner(vars, "ansible_port", "ansible_ssh_port"); ok {
		n, isInt := toInt(v)
		switch {
		case !isInt:
			bad(name, showValue(v)+" is not a port number", "want an integer from 1 to 65535")
		case n < 1 || n > 65535:
			bad(name, fmt.Sprintf("%d is out of range", n), "want an integer from 1 to 65535")
		default:
			c.port = n
		}
	}
	c.user = str("ansible_user", "ansible_ssh_user")
	if name, v, ok := winner(vars, "ansible_connection"); ok {
		s, _ := v.(string)
		if t, known := connectionTypes[s]; known {
			c.connection = t
		} else {
			bad(name, showValue(v)+" is not supported", "want local or ssh")
		}
	} else if hostName == "localhost" && c.addr == "" {
		c.connection = "local"
	}
	c.keyFile = str("ansible_private_key_file", "ansible_ssh_private_key_file")
	if rest, ok := strings.CutPrefix(c.keyFile, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			c.keyFile = filepath.Join(home, rest)
		}
	}
	if name, v, ok := winner(vars, "ansible_become"); ok {
		b, isBool := toBool(v)
		if !isBool {
			bad(name, showValue(v)+" is not a boolean", "want true or false (yes/no, on/off and 1/0 work too)")
		}
		c.become = b
	}
	c.becomeUser = str("ansible_become_user")
	if name, v, ok := winner(vars, "ansible_become_method"); ok {
		if s, _ := v.(string); s != "sudo" && s != "ansible.builtin.sudo" {
			bad(name, showValue(v)+" is not supported", "runbook becomes another user with sudo only")
		}
	}
	return c, ds
}

// scalarString accepts strings and numbers ("22" and 22 alike); err says what
// was wrong otherwise.
func scalarString(v any) (s string, err string) {
	switch v := v.(type) {
	case string:
		return v, ""
	case int:
		return strconv.Itoa(v), ""
	case int64:
		return strconv.FormatInt(v, 10), ""
	case uint64:
		return strconv.FormatUint(v, 10), ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), ""
	case bool:
		return "", fmt.Sprintf("%t is a boolean", v)
	case []any:
		return "", "must be a string, not a list"
	case map[string]any:
		return "", "must be a string, not a mapping"
	}
	return "", fmt.Sprintf("must be a string, not %T", v)
}

// toInt accepts integers, integral floats and strings of digits.
func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case uint64:
		if v > math.MaxInt32 {
			return 0, false
		}
		return int(v), true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > math.MaxInt32 {
			return 0, false
		}
		return int(v), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

// toBool accepts what Ansible's boolean() does.
func toBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case int:
		return v == 1, v == 0 || v == 1
	case float64:
		return v == 1, v == 0 || v == 1
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, true
		case "n", "no", "off", "0", "false", "f":
			return false, true
		}
	}
	return false, false
}

// showValue formats a value for a message: strings quoted, others as they are.
func showValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprint(v)
}
