package bench

import (
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
)

// floorConfig is the raw x/crypto/ssh client config the floor measurements log in with.
func floorConfig(b testing.TB, f farm) *ssh.ClientConfig {
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	hk, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		b.Fatal(err)
	}
	return &ssh.ClientConfig{User: "x", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
}

// connDialer is conn/ssh's dialer for the farm and the target of its first server.
func connDialer(b testing.TB, f farm) (conn.Dialer, conn.Target) {
	d, err := rssh.NewDialer(rssh.Options{KnownHostsFiles: []string{f.KnownHosts}, IdentityFiles: []string{f.Key}, ConfigFile: os.DevNull, DisableAgent: true, Home: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(f.Addrs[0])
	p, _ := strconv.Atoi(port)
	return d, conn.Target{Name: "x", Addr: host, Port: p, Connection: "ssh", Vars: map[string]any{"ansible_port": p}}
}
