// Package ssh is the conn.Conn that reaches hosts over SSH: OpenSSH's host key
// checking, ssh config, agent and ProxyJump, one connection per host, a session per command.
package ssh

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/runbookhq/runbook/internal/conn"
)

// Conn is one logged-in SSH connection. Every command gets its own session
// on it, so it is safe for concurrent use, though the engine runs one step at
// a time per host. Close it to log out.
type Conn struct {
	name   string // inventory name, for errors
	url    string
	client *ssh.Client
	jumps  []*ssh.Client // closed after client, last first
	limit  int
	grace  time.Duration
	log    zerolog.Logger

	done     chan struct{} // closed when the connection has ended
	mu       sync.Mutex
	lostErr  error // why the connection ended, when it was not Close
	closed   bool
	closeErr error
}

var _ conn.Conn = (*Conn)(nil)

func newConn(name string, e endpoint, client *ssh.Client, jumps []*ssh.Client, o *Options) *Conn {
	c := &Conn{
		name:   name,
		url:    fmt.Sprintf("ssh://%s@%s", e.user, e.addr()),
		client: client,
		jumps:  jumps,
		limit:  o.OutputLimit,
		grace:  o.Grace,
		log:    o.Log,
		done:   make(chan struct{}),
	}
	go func() {
		err := client.Wait()
		c.mu.Lock()
		if !c.closed && c.lostErr == nil {
			if err == nil {
				err = errors.New("the host closed the connection")
			}
			c.lostErr = err
		}
		c.mu.Unlock()
		close(c.done)
	}()
	go c.keepalive(o.KeepaliveInterval, o.KeepaliveMax)
	return c
}

// String names the connection: "ssh://deploy@10.0.0.5:22".
func (c *Conn) String() string { return c.url }

// Close logs out and closes the jump hosts' connections.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closeErr
	}
	c.closed = true
	c.mu.Unlock()
	err := c.client.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	for i := len(c.jumps) - 1; i >= 0; i-- {
		if jerr := c.jumps[i].Close(); jerr != nil && !errors.Is(jerr, net.ErrClosed) && err == nil {
			err = jerr
		}
	}
	<-c.done
	c.mu.Lock()
	c.closeErr = err
	c.mu.Unlock()
	return err
}

// lose closes the connection because it stopped answering.
func (c *Conn) lose(err error) {
	c.mu.Lock()
	if c.lostErr == nil && !c.closed {
		c.lostErr = err
	}
	c.mu.Unlock()
	c.client.Close()
	for _, j := range c.jumps {
		j.Close()
	}
}

// lost reports why the connection ended, or nil while it is up.
func (c *Conn) lost() error {
	c.mu.Lock()
	why, closed := c.lostErr, c.closed
	c.mu.Unlock()
	if why != nil {
		return why
	}
	select {
	case <-c.done:
	default:
		return nil
	}
	if closed {
		return errors.New("the connection was closed")
	}
	return errors.New("the connection ended")
}

// transport wraps err as a transport failure, with the reason the connection
// ended when it has.
func (c *Conn) transport(err error) error {
	if why := c.lost(); why != nil {
		err = fmt.Errorf("%w (connection lost: %v)", err, why)
	}
	return &conn.TransportError{Host: c.name, Err: err}
}

// keepalive asks the server for an answer every interval, as OpenSSH's
// ServerAliveInterval does: a host that vanished without a FIN (powered off,
// cable cut, firewall dropping state) is noticed within about (max+1)
// intervals instead of TCP's minutes, and the commands in flight end with a
// transport error.
func (c *Conn) keepalive(interval time.Duration, max int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	answered := make(chan struct{}, 1)
	inFlight, misses := false, 0
	for {
		select {
		case <-c.done:
			return
		case <-answered:
			inFlight, misses = false, 0
			continue
		case <-t.C:
		}
		if inFlight {
			misses++
			if misses >= max {
				c.lose(fmt.Errorf("no answer to %d keepalives sent %s apart", misses, interval))
				return
			}
			continue
		}
		inFlight = true
		go func() {
			// Any answer, even "request failed", shows the host is there.
			if _, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				answered <- struct{}{}
			}
		}()
	}
}
