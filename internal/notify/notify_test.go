package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
)

type server struct {
	mu     sync.Mutex
	bodies []string
	srv    *httptest.Server
}

func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *server {
	s := &server{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// run is the event stream of a small run: two hosts, a pause on h1, h2
// failed and rolled back, an abort.
func run() []event.Event {
	info := event.RunInfo{Runbook: "rb.yml", Name: "demo", User: "alice", Hosts: []string{"h1", "h2"}}
	end := event.RunEndInfo{ExitCode: 1, Reason: "1 failed host exceeds max_fail 0"}
	evs := []event.Event{
		{Kind: event.RunStart, Data: info.Data()},
		{Kind: event.HostStart, Host: "h1", Batch: 1},
		{Kind: event.StepStart, Host: "h1", Batch: 1, Step: "look", Engine: event.Engine{Module: "pause"}},
		{Kind: event.StepEnd, Host: "h1", Batch: 1, Step: "look", Status: event.OK},
		{Kind: event.HostEnd, Host: "h1", Batch: 1, Status: event.OK},
		{Kind: event.HostStart, Host: "h2", Batch: 2},
		{Kind: event.StepStart, Host: "h2", Batch: 2, Step: "break", Engine: event.Engine{Module: "shell"}},
		{Kind: event.StepEnd, Host: "h2", Batch: 2, Step: "break", Status: event.Failed, Error: "token s3cr3t-value leaked"},
		{Kind: event.RollbackStart, Host: "h2", Batch: 2},
		{Kind: event.RollbackEnd, Host: "h2", Batch: 2, Status: event.RolledBack},
		{Kind: event.HostEnd, Host: "h2", Batch: 2, Status: event.RolledBack, Error: "step break: token s3cr3t-value leaked"},
		{Kind: event.Abort, Status: event.Aborted, Error: end.Reason},
		{Kind: event.RunEnd, Status: event.Aborted, Data: end.Data()},
	}
	for i := range evs {
		evs[i].Seq, evs[i].RunID, evs[i].Time = int64(i+1), "R1", time.Date(2026, 12, 7, 10, 0, i, 0, time.UTC)
	}
	return evs
}

func TestKindsInOrder(t *testing.T) {
	s := serve(t, nil)
	secrets := &redact.Set{}
	secrets.Add("s3cr3t-value")
	n := New([]Target{{Kind: Webhook, URL: s.srv.URL, Label: "w", Timeout: 5 * time.Second}, {Kind: Slack, URL: s.srv.URL + "/slack", Label: "s", Timeout: 5 * time.Second}},
		Options{Secrets: secrets, Failed: func(e event.Event) { t.Errorf("delivery failed: %s", e.Error) }})
	for _, e := range run() {
		n.Emit(e)
	}
	n.Close(context.Background())
	var events []string
	slack := 0
	for _, b := range s.got() {
		if strings.Contains(b, "s3cr3t") {
			t.Errorf("a body holds the secret: %s", b)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		if _, ok := m["event"]; !ok {
			slack++
			continue
		}
		events = append(events, m["event"].(string))
	}
	if got, want := strings.Join(events, " "), "run_start approval_needed rollback host_failed abort run_end"; got != want {
		t.Errorf("webhook events = %s, want %s", got, want)
	}
	if slack != 6 {
		t.Errorf("slack got %d messages, want 6", slack)
	}
	// Slack reads <, > and & as markup: "<redacted>" is escaped for it.
	for _, b := range s.got() {
		if strings.Contains(b, `"text":"`) && !strings.Contains(b, `"event"`) && strings.Contains(b, "<redacted>") {
			t.Errorf("a Slack text holds <redacted> unescaped: %s", b)
		}
	}
}

// TestCloseDeadline: a receiver that never answers is given up when Close's
// context ends, and every notification not delivered is reported.
func TestCloseDeadline(t *testing.T) {
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	var mu sync.Mutex
	var failed []event.Event
	n := New([]Target{{Kind: Webhook, URL: s.srv.URL + "/secret-path", Label: "notify[0] webhook", Timeout: time.Minute, Retries: 3}},
		Options{Failed: func(e event.Event) { mu.Lock(); failed = append(failed, e); mu.Unlock() }})
	for _, e := range run() {
		n.Emit(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Give up as soon as the first request is in: the receiver holds it.
	go func() {
		for len(s.got()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	n.Close(ctx)
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 6 {
		t.Fatalf("%d notify_failed, want 6 (every notification)", len(failed))
	}
	for _, e := range failed {
		if e.Kind != event.NotifyFailed || !strings.HasPrefix(e.Error, "notify[0] webhook: ") || strings.Contains(e.Error, "secret-path") {
			t.Errorf("notify_failed = %s %q; want the label and no URL", e.Kind, e.Error)
		}
	}
}

// TestRetries: 5xx and 429 are retried up to Retries more times; other 4xx
// are not, since the request would stay wrong.
func TestRetries(t *testing.T) {
	for _, tt := range []struct {
		status   int
		requests int
	}{
		{http.StatusInternalServerError, 3},
		{http.StatusTooManyRequests, 3},
		{http.StatusNotFound, 1},
		{http.StatusNoContent, 1},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			s := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			var failures int
			n := New([]Target{{Kind: Webhook, URL: s.srv.URL, Label: "w", Timeout: 5 * time.Second, Retries: 2}},
				Options{Backoff: time.Millisecond, Failed: func(event.Event) { failures++ }})
			n.Emit(run()[0])
			n.Close(context.Background())
			if got := len(s.got()); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if wantFail := tt.status >= 300; (failures == 1) != wantFail {
				t.Errorf("%d failures reported for status %d", failures, tt.status)
			}
		})
	}
}

// TestQueueFull: a receiver that falls behind loses notifications, never
// the run's time: Emit does not wait, and Close reports the drops.
func TestQueueFull(t *testing.T) {
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	var mu sync.Mutex
	var msgs []string
	n := New([]Target{{Kind: Webhook, URL: s.srv.URL, Label: "w", Timeout: time.Minute}},
		Options{Queue: 1, Failed: func(e event.Event) { mu.Lock(); msgs = append(msgs, e.Error); mu.Unlock() }})
	for _, e := range run() {
		n.Emit(e) // would block here if Emit waited
	}
	close(release)
	n.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "dropped") {
		t.Errorf("failures = %q, want one saying notifications were dropped", msgs)
	}
}
