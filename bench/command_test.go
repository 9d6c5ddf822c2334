package bench

import (
	"context"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/runbookhq/runbook/internal/conn"
)

// BenchmarkCommand is one command on an open connection: a session with
// raw x/crypto/ssh (floor), and conn/ssh's Run (conn).
func BenchmarkCommand(b *testing.B) {
	f := startFarm(b, 1)
	b.Run("floor", func(b *testing.B) {
		c, err := ssh.Dial("tcp", f.Addrs[0], floorConfig(b, f))
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
		d, tg := connDialer(b, f)
		c, err := d.Dial(context.Background(), tg)
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
