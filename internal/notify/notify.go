// Package notify sends a run's notifications: webhooks with a JSON body per
// event, and Slack incoming webhooks with a line of text, delivered in the
// background so that a receiver that hangs or fails never holds up a change.
//
// A Notifier is an event.Sink: attached to a run's Bus it sees every event
// (already redacted), picks the ones people are told about, and queues them
// for each receiver. Each receiver has its own goroutine and bounded queue,
// and every request its own timeout; a delivery that fails is retried a few
// times with backoff and then reported through Options.Failed, for the run
// to journal as notify_failed. Close waits for what is queued, up to a
// deadline.
package notify

import (
	"bytes"
	"context"
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

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/internal/ui"
)

// What a notification is about: the Event field of a Message.
const (
	RunStart       = "run_start"
	RunResume      = "run_resume"
	ApprovalNeeded = "approval_needed"
	HostFailed     = "host_failed"
	Rollback       = "rollback"
	Abort          = "abort"
	RunEnd         = "run_end"
)

// Kinds of receiver.
const (
	Webhook = "webhook"
	Slack   = "slack"
)

// Target is one receiver.
type Target struct {
	Kind string // Webhook or Slack
	URL  string // rendered; never shown (a webhook URL often holds its token)
	// Label names the receiver in messages without its URL's path or
	// query: "notify[1] webhook 127.0.0.1:9099".
	Label   string
	Timeout time.Duration // per request
	Retries int           // tries after the first
}

// Options configure a Notifier.
type Options struct {
	// Secrets are hidden in every message, as the Bus hides them in events.
	Secrets *redact.Set
	// Earlier are the events of the run before this process (a resume), so
	// that the recap counts the hosts that finished before it.
	Earlier []event.Event
	// Failed is called, from a receiver's goroutine, with a notify_failed
	// event for each notification that could not be delivered; nil drops it.
	Failed func(event.Event)
	// Client sends the requests; nil means a client of its own.
	Client *http.Client
	// Queue is how many notifications wait per receiver (default 256); more
	// are dropped and reported.
	Queue int
	// Backoff is the wait before the first retry, doubled for each next one
	// (default 500ms).
	Backoff time.Duration
}

// Message is the JSON body a webhook receives for each event. Its fields are
// stable: new ones may be added, none changes meaning.
type Message struct {
	Event   string    `json:"event"` // run_start, run_resume, approval_needed, host_failed, rollback, abort, run_end, or an approval event's own kind
	RunID   string    `json:"run_id"`
	Seq     int64     `json:"seq"` // the journal event it is about
	Time    time.Time `json:"time"`
	Runbook string    `json:"runbook"` // the runbook's name
	File    string    `json:"file"`    // its path, as the operator gave it
	User    string    `json:"user,omitempty"`
	Check   bool      `json:"check,omitempty"` // a --check run: nothing is changed
	Hosts   []string  `json:"hosts"`           // the run's hosts, in run order
	Host    string    `json:"host,omitempty"`
	Step    string    `json:"step,omitempty"`
	Status  string    `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	// ExitCode is set on run_end.
	ExitCode *int `json:"exit_code,omitempty"`
	// Recap is where every host stands: host → status (pending, running,
	// ok, failed, rolled_back, rollback_failed, unreachable, interrupted).
	Recap map[string]string `json:"recap"`
	// RecapText is the recap table exec prints, on run_end.
	RecapText string `json:"recap_text,omitempty"`
	// Text is the message for people, as Slack receives it.
	Text string `json:"text"`
}

// Notifier is an event.Sink that sends notifications. Emit never blocks.
type Notifier struct {
	opts    Options
	sinks   []*sink
	ctx     context.Context // ends the requests when Close gives up
	cancel  context.CancelFunc
	mu      sync.Mutex
	closed  bool
	info    event.RunInfo
	started bool
	status  map[string]string
	order   []string
	recap   *ui.Recap
	wg      sync.WaitGroup
}

type sink struct {
	t       Target
	queue   chan Message
	dropped int // under Notifier.mu
}

// New returns a Notifier that sends to targets. With no target it is a sink
// that does nothing.
func New(targets []Target, opts Options) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{opts: opts, ctx: ctx, cancel: cancel, status: map[string]string{}, recap: ui.RecapOf(opts.Earlier)}
	for _, e := range opts.Earlier {
		n.track(e)
	}
	for _, t := range targets {
		s := &sink{t: t, queue: make(chan Message, opts.Queue)}
		n.sinks = append(n.sinks, s)
		n.wg.Add(1)
		go n.run(s)
	}
	return n
}

// Emit queues the notification e calls for, if any, for every receiver. A
// full queue drops it (reported by Close): the run never waits for a
// receiver.
func (n *Notifier) Emit(e event.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Kind != event.NotifyFailed {
		n.recap.Emit(e)
	}
	n.track(e)
	if n.closed || len(n.sinks) == 0 {
		return nil
	}
	m, ok := n.message(e)
	if !ok {
		return nil
	}
	for _, s := range n.sinks {
		select {
		case s.queue <- m:
		default:
			s.dropped++
		}
	}
	return nil
}

// track keeps the run's identity and where each host stands, for the recap
// every message carries.
func (n *Notifier) track(e event.Event) {
	set := func(h, st string) {
		if h == "" {
			return
		}
		if _, ok := n.status[h]; !ok {
			n.order = append(n.order, h)
		}
		n.status[h] = st
	}
	switch e.Kind {
	case event.RunStart, event.RunResume:
		var info event.RunInfo
		if event.DecodeData(e.Data, &info) == nil {
			if e.Kind == event.RunStart || !n.started {
				n.info = info
			}
			n.started = true
			for _, h := range info.Hosts {
				if _, ok := n.status[h]; !ok {
					set(h, "pending")
				}
			}
		}
	case event.HostStart:
		set(e.Host, "running")
	case event.HostEnd:
		set(e.Host, hostStatus(e.Status))
	case event.RollbackEnd:
		set(e.Host, hostStatus(e.Status))
	}
}

func hostStatus(s event.Status) string {
	switch s {
	case event.OK, event.Changed, event.Skipped:
		return "ok"
	case "":
		return "ended"
	}
	return string(s)
}

// message is the notification for e, if e is one people are told about.
func (n *Notifier) message(e event.Event) (Message, bool) {
	m := Message{RunID: e.RunID, Seq: e.Seq, Time: e.Time, Runbook: n.info.Name, File: n.info.Runbook, User: n.info.User,
		Check: n.info.Check, Hosts: append([]string{}, n.info.Hosts...), Host: e.Host, Step: e.Step, Status: string(e.Status), Error: e.Error}
	if m.Runbook == "" {
		m.Runbook = m.File
	}
	kind := string(e.Kind)
	switch {
	case e.Kind == event.RunStart:
		m.Event = RunStart
	case e.Kind == event.RunResume:
		m.Event = RunResume
	case e.Kind == event.StepStart && e.Engine.Module == "pause":
		// A pause waits for a person (or for its time): say so where they
		// watch. An approval the engine journals comes below, by its kind.
		m.Event = ApprovalNeeded
	case strings.HasPrefix(kind, "approv") || strings.HasPrefix(kind, "reject"):
		m.Event = kind
		if u, ok := e.Data["user"].(string); ok {
			m.User = u
		}
	case e.Kind == event.HostEnd && hostStatus(e.Status) != "ok" && e.Status != event.Interrupted && e.Status != event.Aborted:
		m.Event = HostFailed
	case e.Kind == event.RollbackEnd:
		m.Event = Rollback
	case e.Kind == event.Abort, e.Kind == event.Interrupt:
		m.Event = Abort
	case e.Kind == event.RunEnd:
		m.Event = RunEnd
		if end, ok := e.EndInfo(); ok {
			code := end.ExitCode
			m.ExitCode = &code
			if end.Reason != "" && m.Error == "" {
				m.Error = end.Reason
			}
		}
		var b bytes.Buffer
		_ = n.recap.Print(&b) // a bytes.Buffer does not fail
		m.RecapText = b.String()
	default:
		return Message{}, false
	}
	m.Recap = make(map[string]string, len(n.status))
	for h, st := range n.status {
		m.Recap[h] = st
	}
	m.Text = text(m, n.order)
	return m, true
}

// text is the one line (and, at the end, the recap) people read in a chat.
func text(m Message, order []string) string {
	who := ""
	if m.User != "" {
		who = " by " + m.User
	}
	mode := ""
	if m.Check {
		mode = ", check mode"
	}
	run := fmt.Sprintf("runbook %s (run %s%s%s)", m.Runbook, m.RunID, who, mode)
	var s string
	switch m.Event {
	case RunStart:
		s = fmt.Sprintf("%s started on %d hosts: %s", run, len(m.Hosts), strings.Join(m.Hosts, ", "))
	case RunResume:
		s = fmt.Sprintf("%s resumed", run)
	case ApprovalNeeded:
		s = fmt.Sprintf("%s is waiting at %q on %s", run, m.Step, m.Host)
	case HostFailed:
		s = fmt.Sprintf("%s: host %s failed", run, m.Host)
		if m.Status != string(event.Failed) {
			s += " (" + strings.ReplaceAll(m.Status, "_", " ") + ")"
		}
	case Rollback:
		if m.Status == string(event.RolledBack) || m.Status == string(event.OK) {
			s = fmt.Sprintf("%s: host %s rolled back", run, m.Host)
		} else {
			s = fmt.Sprintf("%s: host %s ROLLBACK FAILED, a person must look", run, m.Host)
		}
	case Abort:
		s = fmt.Sprintf("%s %s: no new batch starts", run, m.Status)
	case RunEnd:
		s = fmt.Sprintf("%s ended: %s", run, m.Status)
		if m.ExitCode != nil {
			s += fmt.Sprintf(", exit %d", *m.ExitCode)
		}
	default:
		s = fmt.Sprintf("%s: %s", run, m.Event)
		if m.Host != "" {
			s += " on " + m.Host
		}
		if m.Step != "" {
			s += fmt.Sprintf(" at %q", m.Step)
		}
		if m.Status != "" {
			s += ": " + m.Status
		}
	}
	if m.Error != "" {
		s += ": " + strings.Join(strings.Fields(m.Error), " ")
	}
	if m.Event == RunEnd && m.RecapText != "" {
		s += "\n```\n" + strings.TrimRight(m.RecapText, "\n") + "\n```"
	}
	return s
}

// run delivers s's queue in order until Close closes it.
func (n *Notifier) run(s *sink) {
	defer n.wg.Done()
	for m := range s.queue {
		if n.ctx.Err() != nil {
			n.failed(s, m, 0, errors.New("not sent: the run ended and the time to deliver ran out"))
			continue
		}
		attempts, err := n.deliver(s, m)
		if err != nil {
			n.failed(s, m, attempts, err)
		}
	}
}

// deliver sends m with retries: a network error, a timeout, a 5xx or a 429
// is tried again after a wait that doubles; any other 4xx is not (the
// request itself is wrong, and will stay wrong).
func (n *Notifier) deliver(s *sink, m Message) (int, error) {
	body, ctype, err := n.body(s.t, m)
	if err != nil {
		return 0, err
	}
	wait := n.opts.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		retry, err := n.post(s.t, body, ctype)
		if err == nil {
			return attempt, nil
		}
		last = err
		if !retry || attempt > s.t.Retries {
			return attempt, last
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w; no retry: the run ended and the time to deliver ran out", last)
		}
		wait *= 2
	}
}

func (n *Notifier) post(t Target, body []byte, ctype string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot make the request: bad URL")
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "runbook-notify")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return true, describe(err, t.Timeout)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("status %s", resp.Status)
	}
	return false, fmt.Errorf("status %s", resp.Status)
}

// describe says why a request failed without its URL, which Go's errors
// quote whole.
func describe(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("cancelled: the run ended and the time to deliver ran out")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
		if ue.Timeout() {
			return fmt.Errorf("no answer within %s", timeout)
		}
	}
	// Without the address dialed, which says no more than the label.
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errors.New("cannot resolve the receiver's host")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// body is what t receives for m, with every secret hidden.
func (n *Notifier) body(t Target, m Message) ([]byte, string, error) {
	if t.Kind == Slack {
		// Escaped after it is redacted, so that "<redacted>" is escaped too.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]string{"text": slackEscape(n.opts.Secrets.Redact(m.Text))}); err != nil {
			return nil, "", fmt.Errorf("encoding the message: %w", err)
		}
		return b.Bytes(), "application/json", nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the message: %w", err)
	}
	// Events come redacted from the Bus; the run's record (runbook, hosts)
	// is kept as written there, but a notification leaves the machine, so
	// every value is redacted again.
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, "", fmt.Errorf("encoding the message: %w", err)
	}
	// Text only: seq and exit code are the run's own numbers.
	generic = n.opts.Secrets.RedactMapText(generic)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, "", fmt.Errorf("encoding the message: %w", err)
	}
	return b.Bytes(), "application/json", nil
}

// slackEscape escapes the three characters Slack reads as markup in a
// message's text: "<redacted>" shows as it is, and text from the journal
// cannot become a link or an @channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// failed reports a notification that was not delivered.
func (n *Notifier) failed(s *sink, m Message, attempts int, err error) {
	if n.opts.Failed == nil {
		return
	}
	msg := fmt.Sprintf("%s: %s notification not delivered", s.t.Label, m.Event)
	if attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", attempts)
	}
	why := err.Error()
	// A URL that holds a secret may have it in its host: a TLS or proxy
	// error that names the host must not show it either.
	if u, perr := url.Parse(s.t.URL); perr == nil && n.opts.Secrets.Redact(s.t.URL) != s.t.URL {
		for _, h := range []string{u.Host, u.Hostname()} {
			if h != "" {
				why = strings.ReplaceAll(why, h, redact.Placeholder)
			}
		}
	}
	n.opts.Failed(event.Event{Kind: event.NotifyFailed, Host: m.Host,
		Error: msg + ": " + why,
		Data:  map[string]any{"sink": s.t.Kind, "event": m.Event, "event_seq": m.Seq, "attempts": attempts}})
}

// Close stops taking notifications and waits until every queued one is
// delivered or given up, or until ctx ends: then requests in flight are
// cancelled and what is left is reported as not delivered. It returns when
// every receiver's goroutine has stopped.
func (n *Notifier) Close(ctx context.Context) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	for _, s := range n.sinks {
		close(s.queue)
	}
	n.mu.Unlock()

	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
	for _, s := range n.sinks {
		if s.dropped > 0 && n.opts.Failed != nil {
			n.opts.Failed(event.Event{Kind: event.NotifyFailed,
				Error: fmt.Sprintf("%s: %d notifications dropped: the receiver fell %d behind", s.t.Label, s.dropped, n.opts.Queue),
				Data:  map[string]any{"sink": s.t.Kind, "dropped": s.dropped}})
		}
	}
}
