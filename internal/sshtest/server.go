package sshtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Exec runs one command for the in-process server. It returns the exit
// status; ctx is cancelled when the client signals the session or goes away.
type Exec func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int

// ServerOptions shape an in-process server.
type ServerOptions struct {
	// Addr to listen on; default 127.0.0.1:0.
	Addr string
	// HostKey; default the shared ed25519 host key.
	HostKey *Key
	// Authorized is the client key it lets in; default ClientKey.
	Authorized ssh.PublicKey
	// Stall accepts TCP connections and never says anything.
	Stall bool
	// LoginDelay is how long it thinks before accepting a key.
	LoginDelay time.Duration
	// Exec runs commands; default DefaultExec.
	Exec Exec
}

// Server is an SSH server in this process, for what a real sshd cannot be
// made to do on cue: stall, cut connections, stop answering.
type Server struct {
	Addr    string // host:port
	HostKey *Key

	l        net.Listener
	cfg      *ssh.ServerConfig
	o        ServerOptions
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	closed   atomic.Bool
	accepted atomic.Int64
	logins   atomic.Int64
	sessions atomic.Int64
}

// StartServer starts an in-process server that stops when the test ends.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	s, err := NewServer(t, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts an in-process server; the caller closes it.
func NewServer(t testing.TB, o ServerOptions) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.HostKey == nil {
		o.HostKey, _ = hostKeys(t)
	}
	if o.Authorized == nil {
		o.Authorized = ClientKey(t).Public()
	}
	if o.Exec == nil {
		o.Exec = DefaultExec
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: l.Addr().String(), HostKey: o.HostKey, l: l, o: o, conns: map[net.Conn]bool{}}
	want := o.Authorized.Marshal()
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if o.LoginDelay > 0 {
				time.Sleep(o.LoginDelay)
			}
			if string(key.Marshal()) == string(want) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
		ServerVersion: "SSH-2.0-sshtest",
	}
	s.cfg.AddHostKey(o.HostKey.Signer)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Accepted is how many TCP connections it accepted; Logins how many logged in.
func (s *Server) Accepted() int64 { return s.accepted.Load() }
func (s *Server) Logins() int64   { return s.logins.Load() }
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// Port is the port it listens on.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Host is the address it listens on, without the port.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr)
	return h
}

// Cut closes every connection at once, as a host that crashed would.
func (s *Server) Cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Close stops listening, cuts every connection and waits for its goroutines.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.l.Close()
	s.Cut()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	if s.o.Stall {
		// Read and drop whatever comes until the client gives up.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	s.logins.Add(1)
	go ssh.DiscardRequests(reqs) // answers keepalives with "failure", an answer all the same
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.sessions.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ch, creqs)
		}()
	}
	wg.Wait()
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	started := false
	for {
		select {
		case code := <-done:
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		case req, ok := <-reqs:
			if !ok {
				cancel()
				if started {
					<-done
				}
				return
			}
			switch {
			case req.Type == "exec" && !started:
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				started = true
				go func() { done <- s.o.Exec(ctx, p.Command, ch, ch, ch.Stderr()) }()
			case req.Type == "signal":
				cancel()
			default:
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		}
	}
}

// DefaultExec understands what the runbook benchmark and the fault tests
// run, as the ssh transport writes them (a prefix that reports the process
// group, exec, quoted words): true, false, sleep N, and echo.
func DefaultExec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
	words := strings.Fields(strings.ReplaceAll(Program(cmd), "'", ""))
	if len(words) == 0 {
		return 127
	}
	switch words[0] {
	case "true":
		return 0
	case "false":
		return 1
	case "echo":
		fmt.Fprintln(stdout, strings.Join(words[1:], " "))
		return 0
	case "sleep":
		d := time.Hour
		if len(words) > 1 {
			if f, err := strconv.ParseFloat(words[1], 64); err == nil {
				d = time.Duration(f * float64(time.Second))
			}
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return 0
		case <-ctx.Done():
			return 128 + 15
		}
	}
	fmt.Fprintf(stderr, "sshtest: %s: command not found\n", words[0])
	return 127
}

// Program returns the command line the ssh transport sent without its
// prefix: what follows "exec".
func Program(cmd string) string {
	// The prefix may read the shell's /proc entries before its printf.
	if i := strings.Index(cmd, "printf 'runbook-pgid="); i >= 0 && (i == 0 || strings.HasPrefix(cmd, "{ read ")) {
		if _, rest, ok := strings.Cut(cmd[i:], " && "); ok {
			cmd = rest
		}
	}
	return strings.TrimPrefix(cmd, "exec ")
}
