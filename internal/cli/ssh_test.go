package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// exec over SSH end to end: the flags reach the dialer, an unknown host is
// refused (the host unreachable, with the line to add), and
// --accept-new-host-keys records the keys and runs.
func TestExecOverSSH(t *testing.T) {
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	dir := t.TempDir()
	var hosts strings.Builder
	for i, a := range s.Addrs {
		fmt.Fprintf(&hosts, "        h%d: { ansible_host: %s }\n", i+1, a)
	}
	inv := writeTestFile(t, dir, "inv.yml", fmt.Sprintf(`all:
  children:
    web:
      vars: { ansible_connection: ssh, ansible_port: %d }
      hosts:
%s`, s.Port, hosts.String()))
	out := filepath.Join(dir, "out")
	rb := writeTestFile(t, dir, "rb.yml", fmt.Sprintf(`runbook: over-ssh
hosts: web
serial: 2
steps:
  - name: write who we are
    shell: 'mkdir -p %s && echo "$SSH_CONNECTION" | cut -d" " -f3 > %s/{{ host.name }}'
`, out, out))
	kh := filepath.Join(dir, "ssh", "known_hosts")
	base := []string{"exec", rb, "-i", inv, "--yes", "--state-dir", filepath.Join(dir, "state"),
		"--ssh-config", os.DevNull, "--known-hosts", kh, "--private-key", s.ClientKeyFile, "--connect-timeout", "20s"}

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(args, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, stdout, stderr := run(base...)
	if code == exitcode.OK {
		t.Fatalf("an unknown host was reached:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stdout+stderr, "unreachable") || !strings.Contains(stdout+stderr, "SHA256:") {
		t.Errorf("the refusal does not say unreachable with the fingerprint:\n%s\n%s", stdout, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a step ran on a host whose key is unknown")
	}

	code, stdout, stderr = run(append(base, "--accept-new-host-keys")...)
	if code != exitcode.OK {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "recorded the host key") {
		t.Errorf("recording host keys was not reported:\n%s", stderr)
	}
	for i, a := range s.Addrs {
		got, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("h%d", i+1)))
		if err != nil || strings.TrimSpace(string(got)) != a {
			t.Errorf("h%d ran on %q, %v; want %s", i+1, got, err, a)
		}
	}
	data, _ := os.ReadFile(kh)
	if n := strings.Count(string(data), "\n"); n != len(s.Addrs) {
		t.Errorf("known_hosts has %d lines:\n%s", n, data)
	}

	// Known now: a plain run works and records nothing more.
	if code, stdout, stderr = run(base...); code != exitcode.OK {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if again, _ := os.ReadFile(kh); !bytes.Equal(again, data) {
		t.Error("known_hosts changed on a run with known hosts")
	}
}

func TestSSHFlagErrors(t *testing.T) {
	dir := t.TempDir()
	inv := writeTestFile(t, dir, "inv.yml", "all:\n  hosts:\n    h1: { ansible_connection: local }\n")
	rb := writeTestFile(t, dir, "rb.yml", "runbook: x\nhosts: all\nsteps:\n  - command: ['true']\n")
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--ssh-config", filepath.Join(dir, "missing")}, "ssh config"},
		{[]string{"--private-key", filepath.Join(dir, "no-key")}, "--private-key"},
		{[]string{"--connect-timeout", "0s"}, "--connect-timeout must be positive"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"exec", rb, "-i", inv, "--yes", "--state-dir", filepath.Join(dir, "state")}, tt.flags...)
		code := Main(args, strings.NewReader(""), &stdout, &stderr)
		if code != exitcode.Invalid || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.flags, code, stderr.String(), exitcode.Invalid, tt.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
			t.Errorf("%v: a journal was started", tt.flags)
		}
	}
}

// Local hosts stay local; the others go to the SSH dialer.
func TestHostDialer(t *testing.T) {
	var got []string
	d := hostDialer{
		local: conn.DialerFunc(func(_ context.Context, t conn.Target) (conn.Conn, error) {
			got = append(got, "local "+t.Name)
			return nil, nil
		}),
		ssh: conn.DialerFunc(func(_ context.Context, t conn.Target) (conn.Conn, error) {
			got = append(got, "ssh "+t.Name)
			return nil, nil
		}),
	}
	for _, tg := range []conn.Target{{Name: "a", Connection: "local"}, {Name: "b", Connection: "ssh"}, {Name: "c"}} {
		_, _ = d.Dial(context.Background(), tg)
	}
	if want := "local a,ssh b,ssh c"; strings.Join(got, ",") != want {
		t.Errorf("dialed %v, want %s", got, want)
	}
}

func writeTestFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
