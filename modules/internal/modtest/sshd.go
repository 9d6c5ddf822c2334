package modtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// DialSSHD starts a real OpenSSH sshd for t, running as the current user so
// the files it writes are this machine's, and connects to it as host name,
// its host key checked against a known_hosts file written for it.
func DialSSHD(t *testing.T, name string) conn.Conn {
	t.Helper()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	d, err := rssh.NewDialer(rssh.Options{
		Home: t.TempDir(), ConfigFile: os.DevNull, DisableAgent: true,
		KnownHostsFiles: []string{s.WriteKnownHosts(t, t.TempDir())},
		IdentityFiles:   []string{s.ClientKeyFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, conn.Target{
		Name: name, Addr: s.Addrs[0], Port: s.Port, Connection: "ssh",
		Vars: map[string]any{"ansible_host": s.Addrs[0], "ansible_port": s.Port},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
