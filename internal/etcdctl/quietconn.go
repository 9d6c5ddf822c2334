package etcdctl

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// quietLimit is how long a connection for GET /version may stay open
// before its first request.
//
// etcd reads the first bytes of every new client connection to tell gRPC
// from HTTP (or, with TLS, waits for the first request after the handshake),
// and its graceful stop waits for that read: one silent connection holds
// the member's stop until the connection closes (for ever without TLS, until
// systemd's stop timeout kills it). Go's HTTP transport makes such
// connections: a dial whose request was served by another connection, or
// ended first, goes to the idle pool unused.
const quietLimit = time.Second

// versionTransport is the HTTP transport of one client's GET /version: one
// connection to the member, kept for the next reading, closed if it has
// carried no request within quietLimit of its dial.
func versionTransport(tlsCfg *tls.Config, dial time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial}
	tr := &http.Transport{
		IdleConnTimeout: poolIdle,
		// One connection: readings that overlap wait for it rather than
		// dial a second one that may then never be used.
		MaxConnsPerHost: 1,
	}
	if tlsCfg == nil {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return closeIfQuiet(conn, quietLimit), nil
		}
		return tr
	}
	// With TLS the handshake writes too: what must come soon is the first
	// request, so the watch goes on the TLS connection.
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(conn, tlsFor(tlsCfg, host, "http/1.1"))
		hctx, cancel := context.WithTimeout(ctx, dial)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, &url.Error{Op: "TLS handshake", URL: addr, Err: err}
		}
		return closeIfQuiet(tc, quietLimit), nil
	}
	return tr
}

// quietConn closes its connection when nothing has been written on it
// within a limit of its creation.
type quietConn struct {
	net.Conn
	mu     sync.Mutex
	spoke  bool
	closed bool
	timer  *time.Timer
}

func closeIfQuiet(conn net.Conn, limit time.Duration) net.Conn {
	q := &quietConn{Conn: conn}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timer = time.AfterFunc(limit, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if !q.spoke {
			q.closed = true
			q.Conn.Close()
		}
	})
	return q
}

func (q *quietConn) Write(b []byte) (int, error) {
	q.mu.Lock()
	if !q.spoke && !q.closed {
		q.spoke = true
		q.timer.Stop()
	}
	q.mu.Unlock()
	return q.Conn.Write(b)
}

func (q *quietConn) Close() error {
	q.mu.Lock()
	q.timer.Stop()
	q.mu.Unlock()
	return q.Conn.Close()
}
