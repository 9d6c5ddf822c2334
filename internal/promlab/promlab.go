// Package promlab runs a real Prometheus server on loopback for tests: one
// process with its own data dir, scraping the targets a test gives every
// second, gone when the test ends (or when the test process dies).
package promlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/promql"
)

// Time limits of starting and stopping a server on loopback.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
	startTries   = 3
)

// Binary returns the path of the prometheus binary, and skips t when it is
// not installed: scripts/deps.sh installs Debian's package.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (scripts/deps.sh installs Debian's prometheus package): skipping a test that queries a real Prometheus")
	}
	return bin
}

// Server is one running Prometheus.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	dir     string
	logPath string
	args    []string
	bin     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Config is the configuration file of a server scraping targets (host:port)
// every second, as job "lab".
func Config(targets []string) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	b.WriteString("scrape_configs:\n  - job_name: lab\n    static_configs:\n      - targets: [")
	for i, t := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", t)
	}
	b.WriteString("]\n")
	return b.String()
}

// New starts a server scraping targets and stops it when t ends.
func New(t testing.TB, targets []string) *Server {
	t.Helper()
	bin := Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	s, err := Start(ctx, bin, t.TempDir(), targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Start starts a server in dir (its config, data and log) scraping
// targets, and waits until it is ready. A port taken between picking it
// and binding it is tried again.
func Start(ctx context.Context, bin, dir string, targets []string) (*Server, error) {
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(Config(targets)), 0o600); err != nil {
		return nil, err
	}
	var last error
	for range startTries {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s := &Server{URL: "http://" + addr, dir: dir, logPath: filepath.Join(dir, "prometheus.log"), bin: bin,
			args: []string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--storage.tsdb.retention.time=1h",
				"--web.listen-address=" + addr,
				"--log.level=warn",
			}}
		if err := s.launch(); err != nil {
			return nil, err
		}
		if last = s.waitReady(ctx); last == nil {
			return s, nil
		}
		s.Close()
		if !strings.Contains(s.Log(), "address already in use") {
			break
		}
	}
	return nil, last
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("promlab: no free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) launch() error {
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = log, log
	// The server dies with the test process, even one that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("promlab: starting prometheus: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitReady polls /-/ready until the server answers 200.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("promlab: prometheus exited before it was ready:\n%s", s.Log())
		default:
		}
		resp, err := client.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promlab: prometheus at %s not ready: %w\n%s", s.URL, ctx.Err(), s.Log())
		case <-tick.C:
		}
	}
}

// WaitQuery polls query until it gives a number, for a test that needs
// samples stored before it queries (rate() needs two).
func (s *Server) WaitQuery(ctx context.Context, query string) error {
	c, err := promql.New(promql.Config{URL: s.URL, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		r, err := c.Query(ctx, query, time.Time{})
		if err == nil {
			if _, err = r.Number(); err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("promlab: %q gave no number: %v (%w)", query, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// Log returns the end of the server's log, for a failure message.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// Running reports whether the process runs.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop stops the server with SIGTERM and waits for it to exit (killing it
// when it does not in time); its data dir stays.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("promlab: prometheus did not exit within 20s of SIGTERM and was killed")
	}
}

// Close stops the server.
func (s *Server) Close() error { return s.Stop() }
