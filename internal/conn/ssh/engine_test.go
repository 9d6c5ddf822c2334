package ssh_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/plan"
	"github.com/runbookhq/runbook/internal/spec"
	"github.com/runbookhq/runbook/internal/sshtest"
	"github.com/runbookhq/runbook/inventory"
	"github.com/runbookhq/runbook/modules"
	_ "github.com/runbookhq/runbook/modules/builtin"
	"github.com/runbookhq/runbook/runner"
)

// engineRunbook is rolling batches, register and when, a swap that a
// failure on h2 rolls back (swap's undo), and a host that is unreachable.
const engineRunbook = `
runbook: engine-over-a-transport
hosts: web
serial: 1
max_fail: 2
steps:
  - name: prepare
    shell: 'mkdir -p {{ dir }}/{{ host.name }} && echo v1 > {{ dir }}/{{ host.name }}/app.conf'
  - name: read the version
    command: [cat, '{{ dir }}/{{ host.name }}/app.conf']
    register: before
  - name: only when v1
    shell: 'echo "saw {{ before.stdout }} rc {{ before.rc }}" >> {{ dir }}/{{ host.name }}/log'
    when: 'before.stdout == "v1"'
  - name: never
    shell: 'echo never >> {{ dir }}/{{ host.name }}/log'
    when: 'before.stdout == "v2"'
  - name: install the new config
    swap: { src: new.conf, dest: '{{ dir }}/{{ host.name }}/app.conf', mode: "0640" }
  - name: fails on h2
    command: [sh, -c, 'test {{ host.name }} != h2']
  - name: done
    shell: 'echo done >> {{ dir }}/{{ host.name }}/log'
`

// The engine over SSH does what it does over the local transport: the same
// statuses, counts and files, host by host.
func TestEngineOverSSH(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	o := options(t, s)
	d := newDialer(t, o)

	hosts := func(connection string) string {
		var b strings.Builder
		for i, a := range s.Addrs {
			fmt.Fprintf(&b, "        h%d: { ansible_host: %s, ansible_port: %d }\n", i+1, a, s.Port)
		}
		// h4 has nothing listening: unreachable on either transport.
		if connection == "ssh" {
			fmt.Fprintf(&b, "        h4: { ansible_host: 127.0.0.64, ansible_port: 1 }\n")
		}
		return fmt.Sprintf("all:\n  children:\n    web:\n      vars: { ansible_connection: %s }\n      hosts:\n%s", connection, b.String())
	}
	dialers := map[string]conn.Dialer{
		"local": local.Dialer{},
		"ssh": conn.DialerFunc(func(ctx context.Context, tg conn.Target) (conn.Conn, error) {
			if tg.Connection == "local" {
				return local.Dialer{}.Dial(ctx, tg)
			}
			return d.Dial(ctx, tg)
		}),
	}
	results := map[string]string{}
	for _, connection := range []string{"local", "ssh"} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "new.conf"), "v2\n", 0o644)
		out := runEngine(t, dir, hosts(connection), map[string]any{"dir": filepath.Join(dir, "hosts")}, dialers[connection])
		var b strings.Builder
		for _, name := range []string{"h1", "h2", "h3"} {
			h := out.Hosts[name]
			fmt.Fprintf(&b, "%s: %s ok=%d changed=%d skipped=%d failed=%d\n", name, h.Status, h.Ok, h.Changed, h.Skipped, h.Failed)
			for _, f := range []string{"app.conf", "log"} {
				data, err := os.ReadFile(filepath.Join(dir, "hosts", name, f))
				if err != nil {
					data = []byte(err.Error())
				}
				text := strings.ReplaceAll(string(data), dir, "DIR")
				fmt.Fprintf(&b, "  %s: %q\n", f, text)
			}
			if fi, err := os.Stat(filepath.Join(dir, "hosts", name, "app.conf")); err == nil {
				fmt.Fprintf(&b, "  mode: %v\n", fi.Mode())
			}
		}
		results[connection] = b.String()
		if connection == "ssh" {
			h4 := out.Hosts["h4"]
			if h4 == nil || h4.Status != runner.StatusUnreachable {
				t.Errorf("h4: %+v, want unreachable", h4)
			} else if !strings.Contains(h4.Err.Error(), "connection refused") {
				t.Errorf("h4: %v", h4.Err)
			}
		}
	}
	if results["local"] != results["ssh"] {
		t.Errorf("the runs differ\nlocal:\n%s\nssh:\n%s", results["local"], results["ssh"])
	}
	want := []string{
		`h1: ok ok=6 changed=6 skipped=1 failed=0`, `"saw v1 rc 0\ndone\n"`, `"v2\n"`,
		`h2: rolled_back`, `app.conf: "v1\n"`,
	}
	for _, w := range want {
		if !strings.Contains(results["ssh"], w) {
			t.Errorf("ssh run: no %q in\n%s", w, results["ssh"])
		}
	}
}

// runEngine plans runbook over inv and runs it as exec does.
func runEngine(t *testing.T, dir, inv string, extra map[string]any, d conn.Dialer) *runner.Outcome {
	return runEngineWith(t, engineRunbook, dir, inv, extra, d)
}

func runEngineWith(t *testing.T, runbook, dir, inv string, extra map[string]any, d conn.Dialer) *runner.Outcome {
	t.Helper()
	invPath := writeFile(t, filepath.Join(dir, "inventory.yml"), inv, 0o600)
	in, ds := inventory.Load(invPath)
	if ds.HasErrors() {
		t.Fatalf("inventory: %v", ds.Err())
	}
	rbPath := filepath.Join(dir, "runbook.yml")
	rb, ds := spec.LoadBytes(rbPath, []byte(runbook), modules.Default,
		spec.LoadOptions{Vars: plan.MergeVars(in.AllVarNames(), extra), Extra: modules.Default.FactSamples()})
	if ds.HasErrors() {
		t.Fatalf("runbook: %v", ds.Err())
	}
	p, ds := plan.Build(rb, in, plan.Options{ExtraVars: extra})
	if ds.HasErrors() {
		t.Fatalf("plan: %v", ds.Err())
	}
	// A run makes dozens of sessions per host: more time than one command gets.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := runner.Run(ctx, p, modules.Default, runner.Options{Dialer: d, Forks: 5, RunID: "engine-test", StateDir: t.TempDir()})
	if out == nil {
		t.Fatalf("run: %v", err)
	}
	names := make([]string, 0, len(out.Hosts))
	for n := range out.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%s: %s %s", n, out.Hosts[n].Status, out.Hosts[n].State)
	}
	return out
}

// A host whose connection is cut while a step runs is unreachable: whether
// the step acted is unknown, so it is neither failed nor rolled back.
func TestEngineConnectionCut(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	srv := sshtest.StartServer(t, sshtest.ServerOptions{Exec: func(ctx context.Context, cmd string, i io.Reader, o, e io.Writer) int {
		if strings.Contains(cmd, "sleep") {
			started <- struct{}{}
		}
		return sshtest.DefaultExec(ctx, cmd, i, o, e)
	}})
	go func() {
		select {
		case <-started:
			srv.Cut()
		case <-time.After(testTimeout):
		}
	}()
	d := newDialer(t, fakeOptions(t, srv.Addr, srv.HostKey))
	inv := fmt.Sprintf("all:\n  hosts:\n    h1: { ansible_connection: ssh, ansible_host: %s, ansible_port: %d }\n", srv.Host(), srv.Port())
	rb := "runbook: cut\nhosts: all\nsteps:\n  - command: ['true']\n  - command: [sleep, '600']\n  - command: ['true']\n"
	out := runEngineWith(t, rb, t.TempDir(), inv, nil, d)
	h := out.Hosts["h1"]
	if h.Status != runner.StatusUnreachable || h.Ok != 1 {
		t.Errorf("h1: %s (%d ok): %v", h.Status, h.Ok, h.Err)
	}
	if h.Err == nil || !strings.Contains(h.Err.Error(), "connection lost") {
		t.Errorf("h1's error does not say the connection was lost: %v", h.Err)
	}
}
