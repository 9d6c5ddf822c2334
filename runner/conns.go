package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"sort"
	"sync"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/plan"
)

// controllerTarget is the connection to the machine runbook runs on.
func controllerTarget() *plan.Host { return plan.ControllerHost(nil) }

// connPool holds one connection per host, opened on first use and reused by
// every step, including steps other hosts delegate to it.
type connPool struct {
	dialer conn.Dialer
	mu     sync.Mutex
	conns  map[string]*pooled
}

type pooled struct {
	mu sync.Mutex // held while dialing, so a host is dialed once
	c  conn.Conn
	// turn lets one step at a time use a remote connection, as conn.Conn
	// requires. A local one runs each command as its own process, so steps
	// that several hosts delegate to the controller still run side by side.
	turn  chan struct{}
	local bool
}

func newConnPool(d conn.Dialer) *connPool { return &connPool{dialer: d, conns: map[string]*pooled{}} }

// entry is the pool's place for the host's connection, by its name: a step
// delegated to a host and the host's own steps share one connection.
func (p *connPool) entry(t *plan.Host) *pooled {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.conns[t.Name]
	if e == nil {
		e = &pooled{turn: make(chan struct{}, 1), local: t.Connection == "local"}
		p.conns[t.Name] = e
	}
	return e
}

// get returns the host's connection, dialing it if needed. A failed dial is
// not remembered: the next step tries again. Its error is a
// *conn.TransportError, so the step is recorded as unreachable.
func (p *connPool) get(ctx context.Context, t *plan.Host) (conn.Conn, *pooled, error) {
	e := p.entry(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		return e.c, e, nil
	}
	c, err := p.dialer.Dial(ctx, t.Target())
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("connect to %s: %w", t.Target(), ctx.Err())
		}
		var te *conn.TransportError
		if !errors.As(err, &te) {
			err = &conn.TransportError{Host: t.Name, Err: err}
		}
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, &conn.TransportError{Host: t.Name, Err: errors.New("the dialer returned no connection")}
	}
	e.c = c
	return c, e, nil
}

// acquire returns the host's connection for one step and the function that
// hands it back.
func (p *connPool) acquire(ctx context.Context, t *plan.Host) (conn.Conn, func(), error) {
	c, e, err := p.get(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	if e.local {
		return c, func() {}, nil
	}
	select {
	case e.turn <- struct{}{}:
		return c, func() { <-e.turn }, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for the connection to %s: %w", t.Target(), ctx.Err())
	}
}

// closeAll closes every connection that was opened, at the end of the run.
func (p *connPool) closeAll(log zerolog.Logger) {
	p.mu.Lock()
	keys := make([]string, 0, len(p.conns))
	for k := range p.conns {
		keys = append(keys, k)
	}
	entries := maps.Clone(p.conns)
	p.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		e := entries[k]
		e.mu.Lock()
		if e.c != nil {
			if err := e.c.Close(); err != nil {
				log.Warn().Err(err).Str("host", k).Msg("closing the connection")
			}
			e.c = nil
		}
		e.mu.Unlock()
	}
}

// lazyConn is the controller's connection as modules.Host.Controller: dialed
// only when a module uses it, so runs that never need it never open it.
type lazyConn struct {
	pool *connPool
	t    *plan.Host
}

var _ conn.Conn = (*lazyConn)(nil)

func (l *lazyConn) Run(ctx context.Context, c conn.Cmd) (conn.Output, error) {
	cn, _, err := l.pool.get(ctx, l.t)
	if err != nil {
		return conn.Output{}, err
	}
	if w := conn.ProcWatch(ctx); w != nil {
		// The step's watcher journals it as run on the step's host; it ran here.
		ctx = conn.WithProcWatch(ctx, func(p conn.Proc) { p.On = l.t.Name; w(p) })
	}
	return cn.Run(ctx, c)
}

func (l *lazyConn) Put(ctx context.Context, src io.Reader, dest string, mode fs.FileMode) error {
	cn, _, err := l.pool.get(ctx, l.t)
	if err != nil {
		return err
	}
	return cn.Put(ctx, src, dest, mode)
}

func (l *lazyConn) Get(ctx context.Context, src string, dst io.Writer) error {
	cn, _, err := l.pool.get(ctx, l.t)
	if err != nil {
		return err
	}
	return cn.Get(ctx, src, dst)
}

func (l *lazyConn) String() string { return l.t.Target().String() }

// Close does nothing: the pool closes the connection at the end of the run.
func (l *lazyConn) Close() error { return nil }
