package wait

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func localHost() *modules.Host {
	return &modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Conn: local.New(), Log: zerolog.Nop()}
}

// listen returns an open loopback port, and one where nothing listens.
func listen(t *testing.T) (open, closed string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = l2.Addr().String()
	l2.Close()
	return l.Addr().String(), closed
}

// short is the interval of the tests that wait for a timeout.
var short = dur(100 * time.Millisecond)

func TestRunLocal(t *testing.T) {
	open, closed := listen(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "member", "snap", "db")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		m        Module
		wantErr  string
		wantSeen string
	}{
		{"port open", Module{Port: open}, "", open + " accepts connections"},
		{"port closed", Module{Port: closed, State: "closed"}, "", "connection refused"},
		{"port never opens", Module{Port: closed, Timeout: dur(300 * time.Millisecond), Interval: short},
			"timed out after 300ms waiting for " + closed + " to be open; last seen: " + closed + ": connect: connection refused", ""},
		{"port never closes", Module{Port: open, State: "closed", Timeout: dur(300 * time.Millisecond), Interval: short},
			"timed out after 300ms waiting for " + open + " to be closed; last seen: " + open + " accepts connections", ""},
		{"path present", Module{Path: file}, "", file + " exists"},
		{"path absent", Module{Path: filepath.Join(dir, "wal"), State: "absent"}, "", "does not exist"},
		{"path never appears", Module{Path: filepath.Join(dir, "wal"), Timeout: dur(300 * time.Millisecond), Interval: short},
			"waiting for " + filepath.Join(dir, "wal") + " to be present; last seen: " + filepath.Join(dir, "wal") + " does not exist", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			res, err := tt.m.Run(testCtx(t), localHost())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			var te *probe.TimeoutError
			if tt.wantErr != "" && !errors.As(err, &te) {
				t.Errorf("err is %T, want a *probe.TimeoutError", err)
			}
			if res.Changed || !strings.Contains(res.Data["seen"].(string), tt.wantSeen) {
				t.Errorf("result = %+v, want seen containing %q", res, tt.wantSeen)
			}
		})
	}
}

func TestFor(t *testing.T) {
	m := &Module{For: dur(50 * time.Millisecond)}
	begin := time.Now()
	res, err := m.Run(testCtx(t), localHost())
	if err != nil || res.Data["waited"] != "50ms" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if took := time.Since(begin); took < 50*time.Millisecond {
		t.Errorf("waited %s, want at least 50ms", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	begin = time.Now()
	if _, err := (&Module{For: dur(time.Hour)}).Run(ctx, localHost()); !errors.Is(err, context.Canceled) {
		t.Errorf("Run on a cancelled context = %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("a cancelled wait took %s", took)
	}

	res, err = (&Module{For: dur(time.Hour)}).Check(testCtx(t), localHost())
	if err != nil || res.Data["msg"] != "would wait 3600s" {
		t.Errorf("Check = %+v, %v", res, err)
	}
}

// TestPathThroughConn waits on a scripted host: the path shows up at the
// third try, and a test that cannot run is an error, not an absent path.
func TestPathThroughConn(t *testing.T) {
	f := conntest.New(t)
	f.On(conntest.Exact("test", "-e", "/var/lib/etcd/member")).Exit(1).Times(2)
	f.On(conntest.Exact("test", "-e", "/var/lib/etcd/member"))
	h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop(), Become: true}
	res, err := (&Module{Path: "/var/lib/etcd/member", Interval: dur(10 * time.Millisecond)}).Run(testCtx(t), h)
	if err != nil || res.Data["seen"] != "/var/lib/etcd/member exists" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if n := len(f.Commands()); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
	if !f.Calls()[0].Cmd.Become {
		t.Error("test -e ran without the step's become")
	}

	f = conntest.New(t)
	f.On(conntest.Prefix("test")).Exit(2).Stderr("test: too many arguments")
	_, err = (&Module{Path: "/x"}).Run(testCtx(t), &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop()})
	var ee *conn.ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "testing /x on etcd-1") {
		t.Errorf("Run = %v, want the failed test's error", err)
	}

	f = conntest.New(t)
	f.On(conntest.Prefix("test")).Exit(1)
	res, err = (&Module{Path: "/x"}).Check(testCtx(t), &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop()})
	if err != nil || res.Data["msg"] != "would wait up to 60s for /x to be present; now: /x does not exist" || len(f.Commands()) != 1 {
		t.Errorf("Check = %+v, %v after %d commands", res, err, len(f.Commands()))
	}
}

// TestPortOnRemoteHost covers the remote policy: nc -z on the host, else a
// connect from the controller to the host's address.
func TestPortOnRemoteHost(t *testing.T) {
	open, closed := listen(t)
	_, openPort, _ := net.SplitHostPort(open)
	_, closedPort, _ := net.SplitHostPort(closed)
	tests := []struct {
		name     string
		rule     func(f *conntest.Fake)
		m        Module
		wantErr  string
		wantSeen string
		wantNC   int // nc commands run
	}{
		{"nc says open", func(f *conntest.Fake) { f.On(conntest.Exact("nc", "-z", "-w", "1", "127.0.0.1", "2379")) },
			Module{Port: "127.0.0.1:2379"}, "", "127.0.0.1:2379 accepts connections (nc -z on the host)", 1},
		{"nc says closed", func(f *conntest.Fake) { f.On(conntest.Prefix("nc", "-z")).Exit(1) },
			Module{Port: "127.0.0.1:2379", State: "closed"}, "", "does not accept connections (nc -z on the host", 1},
		{"no nc: dial the host's address", func(f *conntest.Fake) { f.On(conntest.Prefix("nc")).Exit(127) },
			Module{Port: "localhost:" + openPort}, "", "127.0.0.1:" + openPort + " accepts connections (from the controller)", 1},
		{"nc without -z: dial the host's address", func(f *conntest.Fake) {
			f.On(conntest.Prefix("nc")).Exit(1).Stderr("nc: invalid option -- 'z'\nBusyBox v1.36 multi-call binary.")
		}, Module{Port: "127.0.0.1:" + closedPort, State: "closed"}, "", "connection refused (from the controller)", 1},
		{"no nc, asked once", func(f *conntest.Fake) { f.On(conntest.Prefix("nc")).Exit(127) },
			Module{Port: "[::1]:" + closedPort, Timeout: dur(300 * time.Millisecond), Interval: short}, "to be open; last seen: 127.0.0.1:" + closedPort, "", 1},
		{"connection lost", func(f *conntest.Fake) { f.FailAfter(0, nil) },
			Module{Port: "127.0.0.1:2379"}, "connection lost", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := conntest.New(t)
			tt.rule(f)
			h := &modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Conn: f, Log: zerolog.Nop()}
			res, err := tt.m.Run(testCtx(t), h)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			if seen, _ := res.Data["seen"].(string); !strings.Contains(seen, tt.wantSeen) {
				t.Errorf("seen = %q, want %q", seen, tt.wantSeen)
			}
			if n := len(f.Commands()); n != tt.wantNC {
				t.Errorf("ran %d commands %q, want %d", n, f.Commands(), tt.wantNC)
			}
		})
	}

	t.Run("no address to fall back to", func(t *testing.T) {
		f := conntest.New(t)
		f.On(conntest.Prefix("nc")).Exit(127)
		h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop()}
		_, err := (&Module{Port: "127.0.0.1:2379"}).Run(testCtx(t), h)
		if err == nil || !strings.Contains(err.Error(), "no nc on the host (nc: exit status 127), and 127.0.0.1 means host etcd-1 itself") {
			t.Errorf("Run = %v", err)
		}
	})
}
