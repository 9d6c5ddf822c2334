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

// BenchmarkDial is one login and logout: raw x/crypto/ssh (floor), and
// conn/ssh's Dial and Close (conn).
func BenchmarkDial(b *testing.B) {
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
		cfg := &ssh.ClientConfig{User: "x", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
		for i := 0; i < b.N; i++ {
			c, err := ssh.Dial("tcp", f.Addrs[0], cfg)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("conn", func(b *testing.B) {
		d, err := rssh.NewDialer(rssh.Options{KnownHostsFiles: []string{f.KnownHosts}, IdentityFiles: []string{f.Key}, ConfigFile: os.DevNull, DisableAgent: true, Home: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(f.Addrs[0])
		p, _ := strconv.Atoi(port)
		tg := conn.Target{Name: "x", Addr: host, Port: p, Connection: "ssh", Vars: map[string]any{"ansible_port": p}}
		for i := 0; i < b.N; i++ {
			c, err := d.Dial(context.Background(), tg)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
