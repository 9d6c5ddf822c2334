package bench

import (
	"context"
	"testing"

	"golang.org/x/crypto/ssh"
)

// BenchmarkDial is one login and logout: raw x/crypto/ssh (floor), and
// conn/ssh's Dial and Close (conn).
func BenchmarkDial(b *testing.B) {
	f := startFarm(b, 1)
	b.Run("floor", func(b *testing.B) {
		cfg := floorConfig(b, f)
		for i := 0; i < b.N; i++ {
			c, err := ssh.Dial("tcp", f.Addrs[0], cfg)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("conn", func(b *testing.B) {
		d, tg := connDialer(b, f)
		for i := 0; i < b.N; i++ {
			c, err := d.Dial(context.Background(), tg)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}
