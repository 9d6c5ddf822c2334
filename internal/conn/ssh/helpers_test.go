package ssh_test

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// testTimeout bounds each dial and command, so a hang fails one test.
const testTimeout = 60 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// hermetic are options that read nothing of the user's: no ~/.ssh, no
// agent, no ssh config. Tests add what they test.
func hermetic(t *testing.T) rssh.Options {
	return rssh.Options{
		Home:         t.TempDir(),
		ConfigFile:   os.DevNull,
		DisableAgent: true,
	}
}

// options are hermetic options that trust s's host keys and offer its client key.
func options(t *testing.T, s *sshtest.SSHD) rssh.Options {
	o := hermetic(t)
	o.KnownHostsFiles = []string{s.WriteKnownHosts(t, t.TempDir())}
	o.IdentityFiles = []string{s.ClientKeyFile}
	return o
}

func newDialer(t *testing.T, o rssh.Options) *rssh.Dialer {
	t.Helper()
	d, err := rssh.NewDialer(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// target is the i-th address of s as an inventory host with ansible_host and ansible_port.
func target(s *sshtest.SSHD, i int) conn.Target {
	return conn.Target{
		Name: "h" + string(rune('1'+i)), Addr: s.Addrs[i], Port: s.Port, Connection: "ssh",
		Vars: map[string]any{"ansible_host": s.Addrs[i], "ansible_port": s.Port},
	}
}

func dial(t *testing.T, d *rssh.Dialer, tg conn.Target) *rssh.Conn {
	t.Helper()
	c, err := d.Dial(ctxT(t), tg)
	if err != nil {
		t.Fatalf("dial %s: %v", tg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*rssh.Conn)
}

// connect dials the first address of s with options(t, s).
func connect(t *testing.T, s *sshtest.SSHD) *rssh.Conn {
	t.Helper()
	return dial(t, newDialer(t, options(t, s)), target(s, 0))
}

func run(t *testing.T, c conn.Conn, cmd conn.Cmd) (conn.Output, error) {
	t.Helper()
	return c.Run(ctxT(t), cmd)
}

// mustRun runs cmd and fails the test unless it exits 0.
func mustRun(t *testing.T, c conn.Conn, argv ...string) string {
	t.Helper()
	out, err := run(t, c, conn.Cmd{Argv: argv})
	if err != nil {
		t.Fatalf("%q: %v (stderr %q)", argv, err, out.Stderr)
	}
	return string(out.Stdout)
}

// waitFor polls cond until it holds or limit passes: used for what only a
// second look at the host can tell (a process gone).
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: sudo -n without a password and chown to other users")
	}
}

// leftovers lists what dir holds besides the names given.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		found := false
		for _, k := range keep {
			found = found || e.Name() == k
		}
		if !found {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func errorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}

func contains(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q does not contain %q", s, w)
		}
	}
}
