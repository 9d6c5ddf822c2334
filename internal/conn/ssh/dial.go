package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/runbookhq/runbook/internal/conn"
)

// Defaults for Options left at zero.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultAttempts          = 3
	DefaultBackoff           = 500 * time.Millisecond
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveMax      = 3
	DefaultGrace             = 2 * time.Second
	DefaultOutputLimit       = 4 << 20
)

// Options configure a Dialer. The zero value checks host keys against
// ~/.ssh/known_hosts (and /etc/ssh/ssh_known_hosts), reads ~/.ssh/config when
// it exists, and logs in with ssh-agent's keys and the default key files.
type Options struct {
	// KnownHostsFiles replace the ssh config's UserKnownHostsFile and
	// ~/.ssh/known_hosts (--known-hosts). New keys are recorded in the first.
	KnownHostsFiles []string
	// AcceptNewHostKeys records the key of a host no file lists and goes on,
	// as OpenSSH's StrictHostKeyChecking=accept-new; a changed key is still
	// refused. There is no way to skip the check.
	AcceptNewHostKeys bool
	// ConfigFile is the ssh config to read (--ssh-config); empty means
	// ~/.ssh/config, read when it exists. A file named here must exist.
	ConfigFile string
	// IdentityFiles are key files to offer after the inventory's
	// ansible_ssh_private_key_file and before the ssh config's (--private-key).
	IdentityFiles []string
	// ConnectTimeout bounds each attempt: TCP connect, SSH handshake and
	// login. Zero: the ssh config's ConnectTimeout, else DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Attempts is how many times a network failure is tried (DefaultAttempts);
	// a refused login or a host key problem is never tried again.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after each.
	Backoff time.Duration
	// KeepaliveInterval and KeepaliveMax: a keepalive@openssh.com request is
	// sent every interval, and a connection that leaves KeepaliveMax in a row
	// unanswered is closed as lost.
	KeepaliveInterval time.Duration
	KeepaliveMax      int
	// AgentSocket is ssh-agent's socket; empty means $SSH_AUTH_SOCK.
	AgentSocket  string
	DisableAgent bool
	// Passphrase asks for the passphrase of an encrypted key when
	// RUNBOOK_SSH_PASSPHRASE is not set; nil: such a key cannot be used.
	Passphrase func(keyFile string) ([]byte, error)
	// Grace is how long a cancelled command has between SIGTERM and SIGKILL.
	Grace time.Duration
	// OutputLimit is how many bytes of stdout and of stderr Run keeps.
	OutputLimit int
	// Home replaces the user's home folder (~ in paths, default files).
	Home string
	// Log receives connection events: keys recorded, retries, progress.
	Log zerolog.Logger
}

// Dialer is the conn.Dialer for hosts with `ansible_connection: ssh`. Make
// one per run with NewDialer: it caches the parsed ssh config, known_hosts
// files and decrypted keys, so 500 hosts read them once. Safe for concurrent
// use.
type Dialer struct {
	opts  Options
	res   *resolver
	hosts hostKeys
	keys  keyring
	log   zerolog.Logger
}

var _ conn.Dialer = (*Dialer)(nil)

// NewDialer checks the options and reads the ssh config.
func NewDialer(o Options) (*Dialer, error) {
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.KeepaliveMax <= 0 {
		o.KeepaliveMax = DefaultKeepaliveMax
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.OutputLimit <= 0 {
		o.OutputLimit = DefaultOutputLimit
	}
	cfgPath, required := o.ConfigFile, true
	if cfgPath == "" {
		required = false
		home := o.Home
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home != "" {
			cfgPath = filepath.Join(home, ".ssh", "config")
		}
	}
	var cfg *sshConfig
	if cfgPath != "" {
		var err error
		if cfg, err = loadSSHConfig(cfgPath, required); err != nil {
			return nil, err
		}
	}
	d := &Dialer{opts: o, log: o.Log}
	d.res = newResolver(cfg, &d.opts)
	d.hosts = hostKeys{acceptNew: o.AcceptNewHostKeys, log: o.Log}
	d.keys = keyring{passphrase: o.Passphrase}
	return d, nil
}

// Dial logs in to the host t over SSH, through its jump hosts if it has any,
// trying again after network failures. Every failure is a
// *conn.TransportError wrapping an *UnreachableError, *AuthError or
// *HostKeyError (or a plain error for a setting that cannot work).
func (d *Dialer) Dial(ctx context.Context, t conn.Target) (conn.Conn, error) {
	fail := func(err error) error { return &conn.TransportError{Host: t.Name, Err: err} }
	if t.Connection == "local" {
		return nil, fail(errors.New("ssh: the host has ansible_connection: local; it is reached without SSH"))
	}
	target, jumps, err := d.res.target(t)
	if err != nil {
		return nil, fail(fmt.Errorf("ssh: %w", err))
	}
	wait := d.opts.Backoff
	for attempt := 1; ; attempt++ {
		c, err := d.connect(ctx, t.Name, target, jumps)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fail(fmt.Errorf("ssh: connect to %s: %w", target.addr(), ctx.Err()))
		}
		var ue *UnreachableError
		if !errors.As(err, &ue) || attempt >= d.opts.Attempts {
			if ue != nil {
				ue.Attempts = attempt
			}
			return nil, fail(err)
		}
		d.log.Debug().Err(err).Str("host", t.Name).Int("attempt", attempt).Dur("wait", wait).Msg("ssh: connect failed; trying again")
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fail(fmt.Errorf("ssh: connect to %s: %w (after: %v)", target.addr(), ctx.Err(), err))
		case <-timer.C:
		}
		wait *= 2
	}
}

// connect makes one attempt: through each jump host in turn, then to the target.
func (d *Dialer) connect(ctx context.Context, name string, target endpoint, jumps []endpoint) (*Conn, error) {
	var clients []*ssh.Client
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}
	hops := append(append([]endpoint(nil), jumps...), target)
	for i, hop := range hops {
		var via *ssh.Client
		var viaName string
		if i > 0 {
			via, viaName = clients[i-1], hops[i-1].addr()
		}
		c, err := d.login(ctx, hop, via, viaName)
		if err != nil {
			closeAll()
			if i < len(hops)-1 {
				err = fmt.Errorf("jump host %s: %w", hop.addr(), err)
			}
			return nil, err
		}
		clients = append(clients, c)
	}
	client := clients[len(clients)-1]
	return newConn(name, target, client, clients[:len(clients)-1], &d.opts), nil
}

// login opens the TCP connection to e (directly, or through the jump
// host via) and logs in, all within e's connect timeout.
func (d *Dialer) login(ctx context.Context, e endpoint, via *ssh.Client, viaName string) (*ssh.Client, error) {
	addr := e.addr()
	unreachable := func(err error) error { return &UnreachableError{Addr: addr, Via: viaName, Err: err} }

	dialCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var nc net.Conn
	var err error
	var proxied *cmdConn
	switch {
	case via == nil && e.proxyCommand != "":
		proxied, err = dialCommand(dialCtx, e.proxyCommand, addr)
		if err == nil {
			nc = proxied
		}
	case via == nil:
		nc, err = (&net.Dialer{}).DialContext(dialCtx, "tcp", addr)
	default:
		nc, err = via.DialContext(dialCtx, "tcp", addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = &timeoutError{d: e.timeout, what: "the TCP connection"}
		}
		return nil, unreachable(err)
	}

	// The handshake and login are bounded by a timer that closes the
	// connection: deadlines do not work on a channel through a jump host. It
	// stops while a passphrase is being typed.
	var timedOut atomic.Bool
	timer := time.AfterFunc(e.timeout, func() { timedOut.Store(true); nc.Close() })
	defer timer.Stop()
	stopCtx := context.AfterFunc(ctx, func() { nc.Close() })
	defer stopCtx()
	pause := func() func() {
		timer.Stop()
		return func() { timer.Reset(e.timeout) }
	}

	algos, known, err := d.hosts.algorithms(e.knownHosts, addr)
	if err != nil {
		nc.Close()
		return nil, err
	}
	a, err := d.newAuth(e, pause)
	if err != nil {
		nc.Close()
		return nil, &AuthError{Addr: addr, User: e.user, Err: err}
	}
	defer a.close()

	var hostKeyErr error
	hostKeyOK := false
	check := d.hosts.check(e.knownHosts, e.hashKnownHosts)
	cfg := &ssh.ClientConfig{
		User: e.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return a.signers, nil })},
		HostKeyCallback: func(h string, r net.Addr, k ssh.PublicKey) error {
			err := check(h, r, k)
			hostKeyErr, hostKeyOK = err, err == nil
			return err
		},
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-runbook",
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err == nil {
		if !timer.Stop() && timedOut.Load() {
			sc.Close()
			return nil, unreachable(&timeoutError{d: e.timeout, what: "the SSH handshake and login"})
		}
		return ssh.NewClient(sc, chans, reqs), nil
	}
	nc.Close()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case hostKeyErr != nil:
		var he *HostKeyError
		if errors.As(hostKeyErr, &he) {
			return nil, he
		}
		return nil, fmt.Errorf("checking the host key of %s: %w", addr, hostKeyErr)
	case a.signErr != nil:
		return nil, &AuthError{Addr: addr, User: e.user, Tried: a.tried, Err: a.signErr}
	case timedOut.Load():
		return nil, unreachable(&timeoutError{d: e.timeout, what: "the SSH handshake and login"})
	case len(known) > 0 && strings.Contains(err.Error(), "no common algorithm for host key"):
		return nil, noCommonType(addr, known, err)
	case hostKeyOK && isAuthFailure(err):
		return nil, &AuthError{Addr: addr, User: e.user, Tried: a.tried, Err: errors.New("no key was accepted")}
	case proxied != nil:
		return nil, unreachable(proxied.describe(err))
	}
	return nil, unreachable(handshakeError(err))
}

// isAuthFailure tells a refused login from a connection lost during it. The
// library says so only in its message.
func isAuthFailure(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") || strings.Contains(s, "no supported methods remain")
}

// handshakeError makes the library's handshake errors readable.
func handshakeError(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("the host closed the connection during the SSH handshake (%w); is it an SSH server, and does it allow this client (MaxStartups, AllowUsers)?", err)
	}
	return err
}
