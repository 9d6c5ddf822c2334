package conn

import (
	"context"
	"fmt"
)

// Target is everything a Dialer needs to reach one host: the inventory host's
// connection settings, already parsed (ansible_host, ansible_port, ...), and its
// merged vars for transports that read more of them.
type Target struct {
	Name       string // inventory name, for messages
	Addr       string // where to connect
	Port       int
	User       string // empty: the transport decides
	Connection string // "local" or "ssh"
	KeyFile    string
	Vars       map[string]any
}

func (t Target) String() string {
	if t.Connection == "local" || t.Addr == "" || t.Addr == t.Name {
		return t.Name
	}
	return fmt.Sprintf("%s (%s)", t.Name, t.Addr)
}

// Dialer opens connections. The engine dials each host once, on its first step,
// and closes the Conn at the end of the run. Dial must honour ctx; a failure to
// reach the host is reported by the engine as the host being unreachable, so
// Dial should say what was tried (address, user, transport).
type Dialer interface {
	Dial(ctx context.Context, t Target) (Conn, error)
}

// DialerFunc adapts a function to a Dialer.
type DialerFunc func(ctx context.Context, t Target) (Conn, error)

// Dial calls f(ctx, t).
func (f DialerFunc) Dial(ctx context.Context, t Target) (Conn, error) { return f(ctx, t) }
