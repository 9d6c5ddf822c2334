package local

import (
	"context"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
)

func TestDialer(t *testing.T) {
	t.Parallel()
	d := Dialer{Options: []Option{WithOutputLimit(10)}}
	c, err := d.Dial(context.Background(), conn.Target{Name: "h1", Connection: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := c.(*Local); !ok || l.limit != 10 {
		t.Errorf("Dial returned %#v", c)
	}
	for _, connection := range []string{"ssh", ""} {
		_, err := d.Dial(context.Background(), conn.Target{Name: "h2", Addr: "10.0.0.2", Connection: connection})
		if err == nil || !strings.Contains(err.Error(), `connection "ssh" is not local`) || !strings.Contains(err.Error(), "h2 (10.0.0.2)") {
			t.Errorf("connection %q: %v", connection, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Dial(ctx, conn.Target{Name: "h1", Connection: "local"}); err == nil {
		t.Error("Dial with a cancelled ctx succeeded")
	}
}
