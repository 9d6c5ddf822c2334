// Package check is the check module: one probe of a host (a command, an HTTP
// request or a TCP connect) that fails the step unless its expectation holds.
package check

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/argcheck"
)

func init() {
	modules.Register(modules.Info{
		Name: "check",
		New:  func() modules.Module { return new(Module) },
		Doc: modules.Doc{
			Summary: "fail unless a probe of the host passes",
			Description: `Runs exactly one probe and fails the step unless it passes; it changes
nothing, so it is safe in preflight, between batches and in --check runs.

command runs a program on the host without a shell, like the command module,
and passes when expect holds over result.rc, result.stdout and result.stderr
(by default when it exits 0).

http sends a request from the controller (the machine runbook runs on) and
passes when the status is one of status, the body contains body_contains, and
expect holds over result.status, result.body, result.json (the body decoded,
when it is JSON) and result.headers. The server's certificate is always
verified: give ca_file for a private CA.

tcp connects from the controller to addr and passes when the port answers, or,
with closed: true, when nothing answers there (refused or no answer in time).

etcd asks every member of an etcd cluster, from the controller and through
a client per endpoint, for its status, member list, /version and a
linearizable read, the cluster for its alarms, and passes when: the members are
expect_members (by default, one per endpoint), all started and answering,
none a learner, the voters at least 3 and odd (unless allow_small); every
member names the same leader and reports no error; no alarm is raised.
Optional rules: versions (same_minor, min, target, exact), caught_up (each
member's applied index against the leader's commit index), consistency (HashKV at a common revision),
cluster_version and storage_version. The endpoints default to the host var
etcd_endpoints, else the etcd_url var of every host of group etcd (var
etcd_group), the TLS files to vars etcd_ca_file, etcd_cert_file and
etcd_key_file, and a cluster with auth enabled is logged in to with vars
etcd_user and etcd_password (never shown; consistency needs the root role).
The result holds what was seen: leader, cluster_id,
cluster_version, server and storage versions, revision, members (name, id,
versions, leader, raft and applied index, revision, db size), alarms, lag,
hash and the problems; the error names each failed rule with the member.

Because http and tcp run from the controller, write the host's address, not
127.0.0.1, which would be the controller itself. In --check the probe runs as
usual, so a command probe must be one that changes nothing.

Combine with retries, delay and until to wait for a state; use the wait module
when only time, a port or a path matters.`,
			Example: `- name: the endpoint reports healthy
  check:
    http:
      url: 'http://{{ host.addr }}:2379/health'
      expect: 'result.json.health == "true"'
- name: the client port is closed after the stop
  check:
    tcp: { addr: '{{ host.addr }}:2379', closed: true, timeout: 3s }
- name: the binary is the target version
  check:
    command: [/usr/local/bin/etcd, --version]
    expect: 'result.stdout contains "etcd Version: 3.7.3"'
- name: the etcd cluster is healthy, on one minor, above the floor
  check:
    etcd:
      endpoints: '{{ group("etcd") | map(#.vars.etcd_url) }}'
      versions: { same_minor: true, min: "3.6.11", target: "3.7.3" }
      caught_up: 1000
      consistency: true`,
		},
	})
}

// Module holds the check module's arguments: exactly one of the probes.
type Module struct {
	Command arg.Argv     `yaml:"command" doc:"run this program on the host (no shell) and judge its result"`
	Expect  arg.Expr     `yaml:"expect" default:"result.rc == 0" doc:"with command: expression over result.rc, result.stdout, result.stderr that must hold"`
	HTTP    *HTTP        `yaml:"http" doc:"send an HTTP request and judge the response"`
	TCP     *TCP         `yaml:"tcp" doc:"connect to a TCP port"`
	Etcd    *CheckConfig `yaml:"etcd" doc:"check an etcd cluster's topology, health, versions and consistency"`
}

// HTTP is the http probe.
type HTTP struct {
	URL          string            `yaml:"url" runbook:"required" doc:"URL to request, http:// or https://"`
	Method       string            `yaml:"method" default:"GET" doc:"request method"`
	Status       Statuses          `yaml:"status" default:"200" doc:"status codes that pass"`
	BodyContains string            `yaml:"body_contains" doc:"text the response body must contain"`
	Expect       arg.Expr          `yaml:"expect" doc:"expression over result.status, result.body, result.json, result.headers that must hold"`
	Headers      map[string]string `yaml:"headers" doc:"request headers"`
	CAFile       string            `yaml:"ca_file" doc:"PEM file on the controller, relative to the runbook's folder, with the CA that signs the server's certificate"`
	Timeout      arg.Duration      `yaml:"timeout" default:"10s" doc:"time limit for the whole request"`
}

// TCP is the tcp probe.
type TCP struct {
	Addr    string       `yaml:"addr" runbook:"required" doc:"host:port to connect to"`
	Timeout arg.Duration `yaml:"timeout" default:"5s" doc:"time limit for the connect"`
	Closed  bool         `yaml:"closed" doc:"pass when the port is closed instead of open"`
}

// Statuses is one HTTP status code or a list of them: 200 or [200, 204].
type Statuses []int

// DocType names the type in `runbook doc`.
func (Statuses) DocType() string { return "int or list of ints" }

// Defaults returns the arguments as Run sees them.
func (m *Module) Defaults() *Module { return modules.WithDefaults(m) }

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Validate checks that exactly one probe is given and that its arguments make sense.
func (m *Module) Validate() error {
	var given []string
	if len(m.Command) > 0 {
		given = append(given, "command")
	}
	if m.HTTP != nil {
		given = append(given, "http")
	}
	if m.TCP != nil {
		given = append(given, "tcp")
	}
	if m.Etcd != nil {
		given = append(given, "etcd")
	}
	switch len(given) {
	case 0:
		if m.Expect.Src != "" {
			return &modules.FieldError{Field: "expect", Msg: "judges a command, and no command is given; add command, or use http, tcp or etcd"}
		}
		return errors.New("no probe given; give one of command, http, tcp or etcd")
	case 1:
	default:
		return &modules.FieldError{Field: given[1], Msg: fmt.Sprintf("a check runs one probe, and %s is also given; split it into two steps", given[0])}
	}
	if m.Expect.Src != "" && len(m.Command) == 0 && m.Etcd != nil {
		return &modules.FieldError{Field: "expect", Msg: "judges a command; the etcd probe has rules of its own (versions, caught_up, consistency...)"}
	}
	if m.Expect.Src != "" && len(m.Command) == 0 {
		return &modules.FieldError{Field: "expect", Msg: fmt.Sprintf("judges a command; for %s, put expect inside it", given[0])}
	}
	if len(m.Command) > 0 && strings.TrimSpace(m.Command[0]) == "" {
		return &modules.FieldError{Field: "command", Msg: "is empty; give the program to run and its arguments"}
	}
	if m.HTTP != nil {
		if err := m.HTTP.validate(); err != nil {
			return err
		}
	}
	if m.TCP != nil {
		if err := argcheck.HostPort(m.TCP.Addr); err != nil {
			return &modules.FieldError{Field: "tcp.addr", Msg: err.Error()}
		}
	}
	if m.Etcd != nil {
		return m.Etcd.Validate("etcd.")
	}
	return nil
}

func (h *HTTP) validate() error {
	if err := argcheck.URL(h.URL); err != nil {
		return &modules.FieldError{Field: "http.url", Msg: err.Error()}
	}
	if h.Method != "" {
		if err := argcheck.OneOf("a method this probe sends", h.Method, methods...); err != nil {
			return &modules.FieldError{Field: "http.method", Msg: err.Error()}
		}
	}
	if h.Status != nil && len(h.Status) == 0 {
		return &modules.FieldError{Field: "http.status", Msg: "is an empty list, so no response could pass; give the codes that pass, or leave status out for 200"}
	}
	for _, s := range h.Status {
		if s < 100 || s > 599 {
			return &modules.FieldError{Field: "http.status", Msg: fmt.Sprintf("%d is not an HTTP status; use a code from 100 to 599", s)}
		}
	}
	if h.BodyContains != "" && h.Method == "HEAD" {
		return &modules.FieldError{Field: "http.body_contains", Msg: "a HEAD response has no body; use GET"}
	}
	for _, k := range slices.Sorted(maps.Keys(h.Headers)) {
		if k == "" || strings.ContainsAny(k, " \t:\r\n") {
			return &modules.FieldError{Field: "http.headers", Msg: fmt.Sprintf("%q is not a header name", k)}
		}
	}
	if h.CAFile != "" && !argcheck.Templated(h.URL) && !strings.HasPrefix(h.URL, "https://") {
		return &modules.FieldError{Field: "http.ca_file", Msg: "is only used for https:// URLs"}
	}
	return nil
}

var (
	_ modules.Validator = (*Module)(nil)
	_ modules.Checker   = (*Module)(nil)
)
