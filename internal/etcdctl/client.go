package etcdctl

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Client talks to exactly one member, through its one endpoint. Every
// request goes through such a client: a balanced multi-endpoint client could
// send a per-member check, a snapshot or a leader move to another member than
// the one meant. Every request has a deadline.
type Client struct {
	Endpoint string
	cfg      Config
	cli      *clientv3.Client
	// maint asks the member over cli's connection. etcd's own Status and
	// HashKV dial a new connection to the endpoint they are given for each
	// call (its client may balance over several), a TCP and HTTP/2 setup
	// per request on every reading of the cluster; cli reaches this one
	// member only, so its connection is the one they mean.
	maint clientv3.Maintenance
	http  *http.Client
	tls   *tls.Config // nil for http://

	mu      sync.Mutex
	reached bool // connected once: from then on, etcd's client reconnects itself
	// recheck has the next request connect to the port first, as the first
	// one does: a client lent again by the pool to a new reading finds a
	// member that went away at once, not at its request's deadline.
	recheck bool

	pooled *pooled // its place in the pool; nil for a client of its own
}

// Dial returns a client pinned to endpoint. It does not connect yet (etcd's
// client 3.7 connects on the first request); a member that is down shows as
// the error of the first request.
func (cfg Config) Dial(endpoint string) (*Client, error) {
	var tlsCfg *tls.Config
	if strings.HasPrefix(endpoint, "https://") {
		tlsCfg = cfg.TLS
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tlsCfg = tlsCfg.Clone()
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: dial,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    string(cfg.Password),
		// The client's own logs would go to stderr, under the live view; its
		// errors come back from each call instead.
		Logger: zap.NewNop(),
		// Bound each connection attempt by the dial timeout: with 3.7's
		// non-blocking client nothing else does.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: dial,
		})},
		// A request to a member that is down fails within its own deadline;
		// a few quick retries ride out a leader election, no more.
		MaxUnaryRetries:    3,
		BackoffWaitBetween: 100 * time.Millisecond,
	})
	if err != nil {
		// With a user, etcd's client logs in here, before any request.
		if hint := authHint(err, cfg.Username); hint != "" {
			return nil, fmt.Errorf("%s: %w; %s", endpoint, err, hint)
		}
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	// GET /version keeps its connection for the next reading. A member that
	// restarts closes it, which the transport notices, and a GET that meets
	// a connection closed under it is sent again on a new one.
	tr := versionTransport(tlsCfg, dial)
	maint := clientv3.NewMaintenanceFromMaintenanceClient(clientv3.RetryMaintenanceClient(cli, cli.ActiveConnection()), cli)
	return &Client{Endpoint: endpoint, cfg: cfg, cli: cli, maint: maint, http: &http.Client{Transport: tr}, tls: tlsCfg}, nil
}

// Close releases the client's connection.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return c.cli.Close()
}

// request bounds one request by the configured timeout. Before the first
// one it connects to the endpoint itself (and for https shakes hands): etcd's
// client waits for a connection until the deadline and then reports only
// "context deadline exceeded", where this says "connection refused" or
// "certificate signed by unknown authority", at once.
func (c *Client) request(ctx context.Context, what string) (context.Context, context.CancelFunc, error) {
	c.mu.Lock()
	reached, recheck := c.reached, c.recheck
	c.recheck = false
	c.mu.Unlock()
	if !reached || recheck {
		if err := c.reach(ctx, reached); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", what, err)
		}
		c.mu.Lock()
		c.reached = true
		c.mu.Unlock()
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout())
	return rctx, cancel, nil
}

// reach connects to the endpoint's port, and for https shakes hands as
// gRPC would; only connects when tcpOnly (a client lent again, whose
// connection has passed the handshake).
func (c *Client) reach(ctx context.Context, tcpOnly bool) error {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout())
	defer cancel()
	d := &net.Dialer{}
	conn, err := d.DialContext(dctx, "tcp", u.Host)
	if err != nil {
		if dctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("cannot connect to %s within %s", u.Host, c.dialTimeout())
		}
		return err
	}
	defer conn.Close()
	if c.tls == nil || tcpOnly {
		return nil
	}
	tc := tls.Client(conn, tlsFor(c.tls, u.Hostname(), "h2"))
	if err := tc.HandshakeContext(dctx); err != nil {
		return fmt.Errorf("TLS with %s: %w", u.Host, err)
	}
	// With TLS 1.3 the server judges the client's certificate after the
	// client's handshake is done, and says so in an alert on the first read.
	// Speak first as gRPC does (the HTTP/2 preface and empty settings): a
	// member that accepts us answers with its settings.
	if dl, ok := dctx.Deadline(); ok {
		tc.SetDeadline(dl)
	}
	if _, err := tc.Write([]byte(h2Preface)); err != nil {
		return fmt.Errorf("TLS with %s: %w", u.Host, err)
	}
	if _, err := io.ReadFull(tc, make([]byte, 9)); err != nil {
		return fmt.Errorf("TLS with %s: %w", u.Host, err)
	}
	return nil
}

// tlsFor is base for one connection to host speaking proto: the host's name
// is the one checked in its certificate unless base names another.
func tlsFor(base *tls.Config, host, proto string) *tls.Config {
	cfg := base.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{proto}
	return cfg
}

// h2Preface is the HTTP/2 client preface followed by an empty SETTINGS frame.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"

func (c *Client) dialTimeout() time.Duration {
	if c.cfg.DialTimeout <= 0 {
		return DefaultDialTimeout
	}
	return c.cfg.DialTimeout
}

// Status is the member's view of itself and of the cluster.
func (c *Client) Status(ctx context.Context) (*clientv3.StatusResponse, error) {
	rctx, cancel, err := c.request(ctx, "status")
	if err != nil {
		return nil, err
	}
	defer cancel()
	st, err := c.maint.Status(rctx, c.Endpoint)
	if err != nil {
		return nil, c.wrap("status", rctx, err)
	}
	return st, nil
}

// MemberList lists the members: linearizable (through the leader) or, when
// serializable, as this member sees them.
func (c *Client) MemberList(ctx context.Context, serializable bool) (*clientv3.MemberListResponse, error) {
	rctx, cancel, err := c.request(ctx, "member list")
	if err != nil {
		return nil, err
	}
	defer cancel()
	var opts []clientv3.OpOption
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	ml, err := c.cli.MemberList(rctx, opts...)
	if err != nil {
		return nil, c.wrap("member list", rctx, err)
	}
	return ml, nil
}

// Read is a linearizable read of the key "health", which needs the member
// to reach a quorum; permission denied counts as success, since the request
// went through consensus to be refused.
func (c *Client) Read(ctx context.Context) error {
	rctx, cancel, err := c.request(ctx, "linearizable read")
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := c.cli.Get(rctx, "health"); err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		return c.wrap("linearizable read", rctx, err)
	}
	return nil
}

// Alarms lists the cluster's active alarms as "NOSPACE on 8e9e05c52164694d".
func (c *Client) Alarms(ctx context.Context) ([]string, error) {
	rctx, cancel, err := c.request(ctx, "alarm list")
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := c.cli.AlarmList(rctx)
	if err != nil {
		return nil, c.wrap("alarm list", rctx, err)
	}
	var out []string
	for _, a := range resp.Alarms {
		out = append(out, fmt.Sprintf("%s on %s", a.Alarm, ID(a.MemberID)))
	}
	return out, nil
}

// HashKV hashes the member's key space up to rev.
func (c *Client) HashKV(ctx context.Context, rev int64) (*clientv3.HashKVResponse, error) {
	what := fmt.Sprintf("hashkv at revision %d", rev)
	rctx, cancel, err := c.request(ctx, what)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := c.maint.HashKV(rctx, c.Endpoint, rev)
	if err != nil {
		return nil, c.wrap(what, rctx, err)
	}
	return resp, nil
}

// MoveLeader asks the member, which must be the leader, to hand leadership to
// the member with ID to; etcd answers once the transfer is done.
func (c *Client) MoveLeader(ctx context.Context, to uint64) error {
	what := "move leader to " + ID(to)
	rctx, cancel, err := c.request(ctx, what)
	if err != nil {
		return err
	}
	defer cancel()
	if _, err := c.cli.MoveLeader(rctx, to); err != nil {
		return c.wrap(what, rctx, err)
	}
	return nil
}

// Versions is what a member's GET /version answers.
type Versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"` // 3.6+
}

// Versions reads GET <endpoint>/version: the only place that gives the
// cluster version.
func (c *Client) Versions(ctx context.Context) (Versions, error) {
	rctx, cancel, err := c.request(ctx, "GET /version")
	if err != nil {
		return Versions{}, err
	}
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.Endpoint+"/version", nil)
	if err != nil {
		return Versions{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil && errors.Is(err, net.ErrClosed) && rctx.Err() == nil {
		// The idle connection it took was closed for never having carried a
		// request (quietLimit), just then: the transport does not resend on
		// a connection it has not used before.
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return Versions{}, c.wrap("GET /version", rctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Versions{}, c.wrap("GET /version", rctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Versions{}, fmt.Errorf("GET /version: status %d", resp.StatusCode)
	}
	var v Versions
	if err := json.Unmarshal(body, &v); err != nil || v.Server == "" {
		return Versions{}, fmt.Errorf("GET /version: not etcd's version document: %.100q", body)
	}
	return v, nil
}

// wrap names the request and says plainly when its time ran out, which etcd's
// client reports as a bare "context deadline exceeded".
func (c *Client) wrap(what string, rctx context.Context, err error) error {
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %s: %w", what, c.timeout(), err)
	}
	if hint := authHint(err, c.cfg.Username); hint != "" {
		return fmt.Errorf("%s: %w; %s", what, err, hint)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// authHint says what to do about an error of etcd's auth, which names
// neither the vars nor the fix.
func authHint(err error, user string) string {
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty):
		return fmt.Sprintf("the cluster has auth enabled: set vars %s and %s (in the inventory or with -e)", VarUser, VarPassword)
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return fmt.Sprintf("check %s (%q) and %s", VarUser, user, VarPassword)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Sprintf("user %q lacks a permission this needs; checks that hash or move the leader need the root role", user)
	}
	return ""
}

func (c *Client) timeout() time.Duration {
	if c.cfg.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.cfg.Timeout
}

// ID formats a member or cluster ID as etcd prints it: lower-case hex.
func ID(id uint64) string { return fmt.Sprintf("%x", id) }
