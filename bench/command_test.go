package bench

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
)

// BenchmarkCommand is one command on an open connection: a session with
// raw x/crypto/ssh (floor), and conn/ssh's Run (conn).
func BenchmarkCommand(b *testing.B) {
	f := startFarm(b, 1)
	b.Run("floor", func(b *testing.B) {
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
		c, err := ssh.Dial("tcp", f.Addrs[0], &ssh.ClientConfig{User: "x", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := c.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Run("true"); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("conn", func(b *testing.B) {
		d, err := rssh.NewDialer(rssh.Options{KnownHostsFiles: []string{f.KnownHosts}, IdentityFiles: []string{f.Key}, ConfigFile: os.DevNull, DisableAgent: true, Home: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(f.Addrs[0])
		p, _ := strconv.Atoi(port)
		c, err := d.Dial(context.Background(), conn.Target{Name: "x", Addr: host, Port: p, Connection: "ssh", Vars: map[string]any{"ansible_port": p}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Run(context.Background(), conn.Cmd{Argv: []string{"true"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
