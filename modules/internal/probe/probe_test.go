package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/modules"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestIsLocal(t *testing.T) {
	l, f := local.New(), conntest.New(t)
	tests := []struct {
		name string
		h    *modules.Host
		want bool
	}{
		{"local connection", &modules.Host{Conn: l}, true},
		{"the controller's own connection", &modules.Host{Conn: f, Controller: f}, true},
		{"another connection", &modules.Host{Conn: f, Controller: l}, false},
		{"no connection", &modules.Host{}, false},
	}
	for _, tt := range tests {
		if got := IsLocal(tt.h); got != tt.want {
			t.Errorf("%s: IsLocal = %v", tt.name, got)
		}
	}
}

func TestViewpoint(t *testing.T) {
	h := &modules.Host{Name: "etcd-1", Addr: "10.0.0.11"}
	for in, want := range map[string]string{"127.0.0.1": "10.0.0.11", "127.1.2.3": "10.0.0.11", "::1": "10.0.0.11",
		"LocalHost": "10.0.0.11", "10.0.0.12": "10.0.0.12", "etcd-2.example": "etcd-2.example"} {
		if got, err := Viewpoint(h, in); err != nil || got != want {
			t.Errorf("Viewpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Viewpoint(&modules.Host{Name: "etcd-1"}, "localhost"); err == nil {
		t.Error("Viewpoint of localhost for a host without an address succeeded")
	}
}

func TestPoll(t *testing.T) {
	tries := 0
	seen, err := Poll(testCtx(t), "x", time.Minute, time.Millisecond, func(context.Context) (bool, string, error) {
		tries++
		return tries == 3, "try " + strconv.Itoa(tries), nil
	})
	if err != nil || seen != "try 3" || tries != 3 {
		t.Errorf("Poll = %q, %v after %d tries", seen, err, tries)
	}

	begin := time.Now()
	_, err = Poll(testCtx(t), "etcd to be open", 150*time.Millisecond, 50*time.Millisecond, func(context.Context) (bool, string, error) {
		return false, "closed", nil
	})
	var te *TimeoutError
	if !errors.As(err, &te) || err.Error() != "timed out after 150ms waiting for etcd to be open; last seen: closed" {
		t.Errorf("Poll = %v", err)
	}
	if took := time.Since(begin); took < 150*time.Millisecond {
		t.Errorf("Poll gave up after %s, before its timeout", took)
	}

	boom := errors.New("connection lost")
	tries = 0
	if _, err := Poll(testCtx(t), "x", time.Minute, time.Millisecond, func(context.Context) (bool, string, error) {
		tries++
		return false, "", boom
	}); !errors.Is(err, boom) || tries != 1 {
		t.Errorf("Poll = %v after %d tries; want the probe's error at once", err, tries)
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, err = Poll(ctx, "x", time.Minute, time.Hour, func(context.Context) (bool, string, error) {
		cancel()
		return false, "closed", nil
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "last seen: closed") {
		t.Errorf("Poll on a cancelled context = %v", err)
	}
}

func TestURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))

	tests := []struct {
		name     string
		url      string
		remote   func(f *conntest.Fake) // nil: a local host
		addr     string
		wantOK   bool
		wantSeen string
		wantErr  string
	}{
		{"local 200", srv.URL + "/readyz", nil, "", true, "GET " + srv.URL + "/readyz: status 200", ""},
		{"local 503", srv.URL + "/health", nil, "", false, "status 503", ""},
		{"curl says 200", "http://127.0.0.1:2379/readyz", func(f *conntest.Fake) {
			f.On(conntest.Exact("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "--url", "http://127.0.0.1:2379/readyz")).Stdout("200")
		}, "10.0.0.11", true, "status 200 (curl on the host)", ""},
		{"curl cannot connect", "http://127.0.0.1:2379/readyz", func(f *conntest.Fake) {
			f.On(conntest.Prefix("curl")).Exit(7).Stderr("curl: (7) Failed to connect to 127.0.0.1 port 2379: Connection refused\n")
		}, "10.0.0.11", false, "Connection refused (curl on the host)", ""},
		{"no curl: from the controller to the host's address", "http://localhost:" + port + "/readyz", func(f *conntest.Fake) {
			f.On(conntest.Prefix("curl")).Exit(127)
		}, "127.0.0.1", true, "status 200 (from the controller, at 127.0.0.1)", ""},
		{"no curl and no address", "http://localhost:2379/readyz", func(f *conntest.Fake) {
			f.On(conntest.Prefix("curl")).Exit(127)
		}, "", false, "", "no curl on the host, and localhost means host etcd-1 itself"},
		{"connection lost", "http://127.0.0.1:2379/readyz", func(f *conntest.Fake) { f.FailAfter(0, nil) }, "10.0.0.11", false, "", "connection lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &modules.Host{Name: "etcd-1", Addr: tt.addr, Conn: local.New(), Log: zerolog.Nop()}
			if tt.remote != nil {
				f := conntest.New(t)
				tt.remote(f)
				h.Conn = f
			}
			ok, seen, err := NewURL(h, tt.url).Try(testCtx(t), 2*time.Second)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Try: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Try = %v, want an error containing %q", err, tt.wantErr)
			}
			if ok != tt.wantOK || !strings.Contains(seen, tt.wantSeen) {
				t.Errorf("Try = %v, %q; want %v, %q", ok, seen, tt.wantOK, tt.wantSeen)
			}
		})
	}
}

// TestPortAsksForNCOnce: a poll over a host without nc does not ask again.
func TestPortAsksForNCOnce(t *testing.T) {
	f := conntest.New(t)
	f.On(conntest.Prefix("nc")).Exit(127)
	p := NewPort(&modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Conn: f, Log: zerolog.Nop()}, "127.0.0.1:1")
	for range 3 {
		if open, _, err := p.Try(testCtx(t), time.Second); err != nil || open {
			t.Fatalf("Try = %v, %v", open, err)
		}
	}
	if n := len(f.Commands()); n != 1 {
		t.Errorf("ran nc %d times", n)
	}
}
