package local

import (
	"context"
	"fmt"

	"github.com/runbookhq/runbook/internal/conn"
)

// Dialer is the conn.Dialer for hosts with `ansible_connection: local`. It
// lives here rather than in package conn because conn cannot import local.
// Any other connection is refused (the CLI's dialer sends those to SSH), and the engine
// records the host as unreachable rather than running its steps here.
type Dialer struct {
	// Options are given to New for every connection.
	Options []Option
}

var _ conn.Dialer = Dialer{}

// Dial returns a new local connection for a local target.
func (d Dialer) Dial(ctx context.Context, t conn.Target) (conn.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", t, err)
	}
	if t.Connection != "local" {
		c := t.Connection
		if c == "" {
			c = "ssh"
		}
		return nil, fmt.Errorf("host %s: connection %q is not local; this dialer runs hosts with ansible_connection: local only", t, c)
	}
	return New(d.Options...), nil
}
