package etcdctl

import (
	"sync"
	"time"

	"google.golang.org/grpc/connectivity"
)

// A run reads the cluster before most steps of every member (the facts of a
// when:, each attempt of a check): a new client per endpoint and reading is
// a TCP and HTTP/2 setup, on both sides, each time. Gather borrows clients
// from this pool instead, and gives them back on Close.
//
// A pooled client is lent again only while its connection is up (gRPC
// reports it ready). A member that stopped or restarted since closed that
// connection with its process: its client is dropped and a new one made,
// which connects afresh, so a restarted member is read as the process it
// now is. A client lent again still connects to the member's port before
// its first request of the reading, as a new one does: a member that went
// away is refused at once, not at the deadline of a request sent on a
// connection that is gone. Nothing read is kept: only connections are.
var pool = clientPool{idle: poolIdle, clients: map[poolKey]*pooled{}}

// poolIdle is how long a client nobody uses stays open.
const poolIdle = 30 * time.Second

type clientPool struct {
	idle    time.Duration
	mu      sync.Mutex
	clients map[poolKey]*pooled
}

// poolKey is everything a client is made from.
type poolKey struct {
	endpoint      string
	dial, timeout time.Duration
	user          string
	password      Secret
	tlsID         string
}

type pooled struct {
	key   poolKey
	c     *Client
	users int
	timer *time.Timer // closes the client once idle; nil while in use
	idles int         // counts the times it became idle: a timer of an earlier time is stale
	gone  bool        // dropped from the pool: closed when its last user is done
}

// borrow returns a client for endpoint: the pool's, if its connection is
// up, else a new one. Give it back with giveBack.
func (p *clientPool) borrow(cfg Config, endpoint string) (*Client, error) {
	key, ok := cfg.poolKey(endpoint)
	if !ok {
		return cfg.Dial(endpoint)
	}
	var stale *Client
	p.mu.Lock()
	if e := p.clients[key]; e != nil {
		if e.c.ready() {
			e.users++
			if e.timer != nil {
				e.timer.Stop()
				e.timer = nil
			}
			p.mu.Unlock()
			e.c.mu.Lock()
			e.c.recheck = true
			e.c.mu.Unlock()
			return e.c, nil
		}
		stale = p.drop(e)
	}
	p.mu.Unlock()
	if stale != nil {
		stale.Close()
	}
	c, err := cfg.Dial(endpoint)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients[key] == nil {
		e := &pooled{key: key, c: c, users: 1}
		c.pooled = e
		p.clients[key] = e
	}
	return c, nil
}

// giveBack ends a use of c: a pooled client stays open for the next
// reading, for a while; any other is closed.
func (p *clientPool) giveBack(c *Client) {
	e := c.pooled
	if e == nil {
		c.Close()
		return
	}
	p.mu.Lock()
	e.users--
	done := e.users == 0 && e.gone
	if e.users == 0 && !e.gone {
		e.idles++
		n := e.idles
		e.timer = time.AfterFunc(p.idle, func() { p.expire(e, n) })
	}
	p.mu.Unlock()
	if done {
		c.Close()
	}
}

// expire closes a client that stayed idle since it became idle the n-th
// time.
func (p *clientPool) expire(e *pooled, n int) {
	p.mu.Lock()
	var c *Client
	if e.users == 0 && !e.gone && e.idles == n {
		c = p.drop(e)
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// drop takes e out of the pool, and returns its client when nobody uses it,
// for the caller to close outside the lock.
func (p *clientPool) drop(e *pooled) *Client {
	if p.clients[e.key] == e {
		delete(p.clients, e.key)
	}
	e.gone = true
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if e.users == 0 {
		return e.c
	}
	return nil
}

// poolKey says what identifies a client made from cfg for endpoint; false
// when cfg's TLS settings were not read from files by Resolve, and so cannot
// be told apart from others.
func (cfg Config) poolKey(endpoint string) (poolKey, bool) {
	if cfg.TLS != nil && cfg.tlsID == "" {
		return poolKey{}, false
	}
	return poolKey{
		endpoint: endpoint, dial: cfg.DialTimeout, timeout: cfg.Timeout,
		user: cfg.Username, password: cfg.Password, tlsID: cfg.tlsID,
	}, true
}

// ready reports whether the client's connection is up: a stopped or
// restarted member closed it.
func (c *Client) ready() bool {
	return c.cli.ActiveConnection().GetState() == connectivity.Ready
}
