package assertmetric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/internal/promql"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

// clock is what the gate waits by.
type clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time                                   { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error { return probe.Sleep(ctx, d) }

// Run scrapes until expect has held as for and within ask, or fails saying
// what it read. It never changes anything.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	g, err := newGate(m.Defaults(), h)
	if err != nil {
		return modules.Result{}, err
	}
	defer g.close()
	data, err := g.run(ctx)
	return modules.Result{Data: data}, err
}

// Check scrapes once and reports whether expect holds now. A gate that does
// not hold fails, as it would in the run, except one with within: nothing
// changes in --check, so what it would wait for may never come. An
// expression over changes cannot be judged from one scrape: Check then only
// shows that every endpoint answers.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	g, err := newGate(d, h)
	if err != nil {
		return modules.Result{}, err
	}
	defer g.close()
	r, err := g.round(ctx)
	if err != nil {
		return modules.Result{}, err
	}
	data := g.data(r, false)
	switch {
	case r.ok():
		data["held"] = true
		data["msg"] = "holds now"
		return modules.Result{Data: data}, nil
	case g.windowed && r.baselined():
		data["msg"] = "every endpoint answers; expect reads changes since this first scrape, so the run judges it from its next sample"
		return modules.Result{Data: data}, nil
	case d.Within > 0:
		data["msg"] = fmt.Sprintf("would wait up to %s for it to hold; now it does not: %s", probe.Dur(d.Within.Std()), r.details())
		return modules.Result{Data: data}, nil
	}
	return modules.Result{Data: data}, g.fail("does not hold now", r)
}

// gate is one run of the module's gate.
type gate struct {
	m        *Module // with defaults
	h        *modules.Host
	prog     *eval.Program
	urls     []string
	scraper  *scraper
	clock    clock
	scope    eval.Scope // the step's, copied: rounds add their own Extra and Result
	trackers map[string]*tracker
	windowed bool // expect reads changes since the baseline (delta, quantile_delta)
	samples  int
	start    time.Time
	// With settle: when the current window and its baseline started, and
	// how many times a sample that did not hold started it again.
	windowStart time.Time
	restarts    int
	// where names each URL in messages: "on m2 (URL)" when one inventory
	// host has the URL's address, else "at URL".
	where map[string]string
	// prom is the Prometheus source's client; nil for a scrape.
	prom *promql.Client
}

// pathOrEmpty is controllerPath of a file that may not be given.
func pathOrEmpty(h *modules.Host, file string) string {
	if file == "" {
		return ""
	}
	return controllerPath(h, file)
}

// promRound is a sample of the Prometheus source: expect evaluated once,
// its promql() calls asking the server now.
func (g *gate) promRound(ctx context.Context) (*round, error) {
	r := &round{at: g.clock.Now(), outs: []outcome{{url: g.urls[0]}}, where: g.where}
	o := &r.outs[0]
	scope := g.scope
	scope.Result = map[string]any{"url": g.urls[0]}
	scope.PromQL = func(q string) (float64, error) {
		v, err := g.prom.Number(ctx, q, time.Time{})
		if err == nil {
			o.reads = append(o.reads, read{key: "promql(" + strconv.Quote(q) + ")", value: v})
		}
		return v, err
	}
	o.holds, o.err = g.prog.Bool(&scope)
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("expect `%s`: %w after %s (%s)", shorten(g.m.Expect.Src), err, probe.Dur(r.at.Sub(g.start)), plural(g.samples, "sample"))
	}
	g.samples++
	var ee *eval.Error
	if errors.As(o.err, &ee) {
		o.err = ee.Err
	}
	g.h.Log.Debug().Int("sample", g.samples).Bool("holds", r.ok()).Str("seen", r.details()).Msg("assert-metric sample")
	return r, nil
}

func newGate(m *Module, h *modules.Host) (*gate, error) {
	prog := m.Expect.Program
	if prog == nil {
		// A module built by hand: the loader did not compile expect.
		p, ds := eval.Compile(m.Expect.Src, m.Expect.Pos, &eval.Env{Result: true, Vars: h.Vars, Extra: m.ExprNames("expect")}, eval.Bool)
		if err := ds.Err(); err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
		prog = p
	}
	client, err := m.client(h)
	if err != nil {
		return nil, err
	}
	var prom *promql.Client
	if m.Prometheus != "" {
		prom, err = promql.New(promql.Config{URL: m.Prometheus, CAFile: pathOrEmpty(h, m.CAFile), CertFile: pathOrEmpty(h, m.CertFile),
			KeyFile: pathOrEmpty(h, m.KeyFile), BearerToken: m.BearerToken, Username: m.Username, Password: m.Password, Timeout: m.Timeout.Std()})
		if err != nil {
			return nil, err
		}
	}
	g := &gate{prom: prom,
		m: m, h: h, prog: prog, urls: m.endpoints(),
		scraper:  &scraper{client: client, headers: m.Headers, timeout: m.Timeout.Std(), maxPage: MaxPage, clientCert: m.CertFile != ""},
		clock:    m.clock,
		scope:    eval.Scope{Vars: h.Vars, Host: eval.Host{Name: h.Name, Addr: h.Addr, Vars: h.Vars}},
		trackers: map[string]*tracker{},
		windowed: windowFunc(prog) != "",
	}
	if h.Scope != nil {
		g.scope = *h.Scope
	}
	if g.clock == nil {
		g.clock = realClock{}
	}
	if prom != nil {
		g.urls = []string{prom.URL()}
	}
	for _, u := range g.urls {
		g.trackers[u] = newTracker()
	}
	g.where = hostsOf(g.urls, g.scope.Inventory)
	g.start = g.clock.Now()
	g.windowStart = g.start
	return g, nil
}

// close lets go of the connections kept open between samples.
func (g *gate) close() {
	g.scraper.client.CloseIdleConnections()
	if g.prom != nil {
		g.prom.Close()
	}
}

// client returns the HTTP client of the step: the endpoint's certificate is
// always verified, against ca_file when given.
func (m *Module) client(h *modules.Host) (*http.Client, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CAFile != "" {
		pem, err := os.ReadFile(controllerPath(h, m.CAFile))
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate (want the CA's certificate, -----BEGIN CERTIFICATE-----)", controllerPath(h, m.CAFile))
		}
	}
	if m.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(controllerPath(h, m.CertFile), controllerPath(h, m.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("cert_file, key_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Transport: tr}, nil
}

// controllerPath resolves a file on the controller against the runbook's folder.
func controllerPath(h *modules.Host, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(h.RunbookDir, file)
}

// run samples as for and within ask and returns the result's data.
func (g *gate) run(ctx context.Context) (map[string]any, error) {
	d := g.m
	interval := d.Interval.Std()
	var (
		r   *round
		err error
	)
	if g.windowed {
		// An expression over changes has nothing to judge at the first
		// scrape: it takes the baseline, and judging starts a sample later.
		if r, err = g.round(ctx); err != nil {
			return g.data(r, false), err
		}
		if d.Within == 0 && !r.baselined() {
			return g.data(r, false), g.fail("cannot take its baseline", r)
		}
		limit := g.start.Add(max(d.Within.Std(), d.For.Std(), interval))
		if d.Within > 0 {
			limit = g.start.Add(d.Within.Std())
		}
		if err := g.sleepUntil(ctx, nextTick(g.start, interval, g.clock.Now(), limit), r); err != nil {
			return g.data(r, false), err
		}
	}
	if d.Within > 0 {
		deadline := g.start.Add(d.Within.Std())
		for {
			if r, err = g.round(ctx); err != nil {
				return g.data(r, false), err
			}
			if r.ok() {
				break
			}
			now := g.clock.Now()
			if !now.Before(deadline) {
				return g.data(r, false), g.fail(fmt.Sprintf("did not hold within %s (%s)", probe.Dur(d.Within.Std()), plural(g.samples, "sample")), r)
			}
			if err := g.sleepUntil(ctx, nextTick(g.start, interval, now, deadline), r); err != nil {
				return g.data(r, false), err
			}
		}
	} else {
		for {
			if r, err = g.round(ctx); err != nil {
				return g.data(r, false), err
			}
			if r.ok() {
				break
			}
			if restarted, err := g.restart(ctx, r); err != nil || !restarted {
				if err != nil {
					return g.data(r, false), err
				}
				verdict := "does not hold"
				if d.For > 0 {
					verdict = fmt.Sprintf("does not hold at the first sample it judges (it must hold for %s)", probe.Dur(d.For.Std()))
				}
				return g.data(r, false), g.fail(g.settleVerdict(verdict), r)
			}
		}
	}
	heldAt := r.at
	data := func(r *round, held bool) map[string]any {
		out := g.data(r, held)
		out["held_after"] = dur(heldAt.Sub(g.start))
		if d.Settle > 0 {
			out["window_restarts"] = g.restarts
		}
		return out
	}
	if d.For == 0 {
		return data(r, true), nil
	}
	// The time expect must hold starts at the first sample that held; over
	// changes without within, at the baseline, so that for is the window.
	from := heldAt
	if g.windowed && d.Within == 0 {
		from = g.windowStart
	}
	end := from.Add(d.For.Std())
	for r.at.Before(end) {
		if err := g.sleepUntil(ctx, nextTick(from, interval, g.clock.Now(), end), r); err != nil {
			return data(r, false), err
		}
		if r, err = g.round(ctx); err != nil {
			return data(r, false), err
		}
		if !r.ok() {
			restarted, err := g.restart(ctx, r)
			if err != nil {
				return data(r, false), err
			}
			if restarted {
				from = g.windowStart
				end = from.Add(d.For.Std())
				continue
			}
			out := data(r, false)
			out["held_for"] = dur(r.at.Sub(from))
			return out, g.fail(g.settleVerdict(fmt.Sprintf("stopped holding after %s of the %s it must hold (sample %d)",
				dur(r.at.Sub(from)), probe.Dur(d.For.Std()), g.samples)), r)
		}
	}
	out := data(r, true)
	out["held_for"] = dur(r.at.Sub(from))
	return out, nil
}

// restart starts the window again after r, a sample that did not hold,
// when settle allows it: a whole window from now must still end within
// settle of the gate's start. The new baseline is a fresh scrape of every
// URL; the next sample is judged an interval later. It reports false when
// settle does not allow another window (or is not given).
func (g *gate) restart(ctx context.Context, r *round) (bool, error) {
	d := g.m
	if d.Settle == 0 || !g.windowed || d.Within > 0 {
		return false, nil
	}
	limit := g.start.Add(d.Settle.Std())
	for {
		if g.clock.Now().Add(d.For.Std()).After(limit) {
			return false, nil
		}
		g.restarts++
		g.h.Log.Info().Int("restart", g.restarts).Str("seen", r.details()).
			Msg("assert-metric: expect did not hold; settle starts the window again from a new baseline")
		for _, u := range g.urls {
			g.trackers[u] = newTracker()
		}
		base, err := g.round(ctx)
		if err != nil {
			return false, err
		}
		g.windowStart = base.at
		if base.baselined() {
			end := base.at.Add(d.For.Std())
			return true, g.sleepUntil(ctx, nextTick(base.at, d.Interval.Std(), g.clock.Now(), end), base)
		}
		// A URL did not answer: no baseline; try again an interval later.
		r = base
		if err := g.sleepUntil(ctx, g.clock.Now().Add(d.Interval.Std()), base); err != nil {
			return false, err
		}
	}
}

// settleVerdict adds to a verdict how long settle waited for a window.
func (g *gate) settleVerdict(verdict string) string {
	if g.m.Settle == 0 || g.restarts == 0 {
		return verdict
	}
	return fmt.Sprintf("%s, and no whole window held within settle %s (%s)", verdict,
		probe.Dur(g.m.Settle.Std()), plural(g.restarts, "restart"))
}

// nextTick is the first time after now on the grid origin + k·interval, and
// at most limit: a scrape slower than interval skips ticks instead of
// sampling twice in a row.
func nextTick(origin time.Time, interval time.Duration, now, limit time.Time) time.Time {
	k := now.Sub(origin)/interval + 1
	next := origin.Add(k * interval)
	if next.After(limit) {
		return limit
	}
	return next
}

// sleepUntil waits for t; a stop says what the last sample saw.
func (g *gate) sleepUntil(ctx context.Context, t time.Time, last *round) error {
	d := t.Sub(g.clock.Now())
	if d <= 0 {
		return nil
	}
	if err := g.clock.Sleep(ctx, d); err != nil {
		return fmt.Errorf("expect `%s`: stopped after %s (%s): %w; last sample %s",
			shorten(g.m.Expect.Src), probe.Dur(g.clock.Now().Sub(g.start)), plural(g.samples, "sample"), err, last.details())
	}
	return nil
}

// hostsOf names each URL by the inventory host whose address it has, when
// exactly one has it: an operator knows members by name.
func hostsOf(urls []string, inv eval.Inventory) map[string]string {
	where := map[string]string{}
	for _, u := range urls {
		where[u] = "at " + u
	}
	if inv == nil {
		return where
	}
	hosts := inv.Group("all")
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			continue
		}
		var names []string
		for _, h := range hosts {
			if h.Addr != "" && h.Addr == pu.Hostname() {
				names = append(names, h.Name)
			}
		}
		if len(names) == 1 {
			where[u] = "on " + names[0] + " (" + u + ")"
		}
	}
	return where
}

// round is one sample: every URL scraped and expect evaluated over each.
type round struct {
	at    time.Time
	outs  []outcome
	where map[string]string // the gate's names of the URLs
}

// outcome is what one URL gave in a round.
type outcome struct {
	url      string
	holds    bool
	baseline bool // the URL's first scrape, only taken, for an expression over changes
	reads    []read
	why      string // expect's false clause and the values it saw there
	err      error  // the scrape failed, or expect could not be evaluated
}

// baselined reports whether every URL's scrape was taken as its baseline.
func (r *round) baselined() bool {
	for _, o := range r.outs {
		if !o.baseline {
			return false
		}
	}
	return true
}

func (r *round) ok() bool {
	for _, o := range r.outs {
		if !o.holds {
			return false
		}
	}
	return true
}

// details says, for each URL where expect does not hold, what it read or
// why it could not: "at http://…: read etcd_server_has_leader=0".
func (r *round) details() string {
	var parts []string
	for _, o := range r.outs {
		where := r.where[o.url]
		if where == "" {
			where = "at " + o.url
		}
		switch {
		case o.holds:
		case o.err != nil:
			parts = append(parts, fmt.Sprintf("%s: %v", where, o.err))
		case o.baseline:
			parts = append(parts, fmt.Sprintf("%s: first scrape, the baseline of delta and quantile_delta", where))
		case o.why != "":
			parts = append(parts, fmt.Sprintf("%s: %s", where, o.why))
		case len(o.reads) > 0:
			parts = append(parts, fmt.Sprintf("%s: read %s", where, formatReads(o.reads)))
		default:
			parts = append(parts, fmt.Sprintf("%s: false, reading no metric", where))
		}
	}
	if len(parts) == 0 {
		return "holds"
	}
	return strings.Join(parts, "; ")
}

// round scrapes every URL at once and evaluates expect over each page. Its
// error ends the gate at once: the step was stopped, or a call in expect can
// never succeed.
func (g *gate) round(ctx context.Context) (*round, error) {
	if g.prom != nil {
		return g.promRound(ctx)
	}
	r := &round{at: g.clock.Now(), outs: make([]outcome, len(g.urls)), where: g.where}
	pages := make([]*page, len(g.urls))
	var wg sync.WaitGroup
	for i, u := range g.urls {
		r.outs[i].url = u
		wg.Go(func() {
			pages[i], r.outs[i].err = g.scraper.scrape(ctx, u)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("expect `%s`: %w after %s (%s)", shorten(g.m.Expect.Src), err, probe.Dur(r.at.Sub(g.start)), plural(g.samples, "sample"))
	}
	g.samples++
	fatal := false
	for i, p := range pages {
		o := &r.outs[i]
		if o.err != nil {
			continue
		}
		t := g.trackers[o.url]
		first := !t.started
		if t.observe(p) {
			g.h.Log.Info().Str("url", o.url).Msg("the process restarted since the previous scrape (process_start_time_seconds changed): delta counts its counters from zero")
		}
		if first && g.windowed {
			o.baseline = true
			continue
		}
		rd := newReader(p, t)
		scope := g.scope
		scope.Extra = maps.Clone(g.scope.Extra)
		if scope.Extra == nil {
			scope.Extra = map[string]any{}
		}
		maps.Copy(scope.Extra, rd.funcs())
		scope.Result = map[string]any{"url": o.url}
		o.holds, o.err = g.prog.Bool(&scope)
		o.reads = rd.reads
		if o.err == nil && !o.holds {
			// The reads are the same again: Why calls what expect called.
			o.why = g.prog.Why(&scope)
		}
		var ee *eval.Error
		if errors.As(o.err, &ee) {
			o.err = ee.Err // the message names the expression itself
		}
		var ue *usageError
		fatal = fatal || errors.As(o.err, &ue)
	}
	if fatal {
		return r, g.fail("cannot be evaluated", r)
	}
	g.h.Log.Debug().Int("sample", g.samples).Bool("holds", r.ok()).Str("seen", r.details()).Msg("assert-metric sample")
	return r, nil
}

// fail is the gate's error: where expect is, what it is, the verdict, and
// what each URL where it does not hold gave.
func (g *gate) fail(verdict string, r *round) error {
	// The position names the expression; printed whole, a long gate would
	// push what was false (in details) out of sight.
	if g.m.Expect.Pos.IsValid() {
		return fmt.Errorf("%s: expect %s: %s", g.m.Expect.Pos, verdict, r.details())
	}
	return fmt.Errorf("expect `%s` %s: %s", shorten(g.m.Expect.Src), verdict, r.details())
}

// data is the result: the endpoints, how many samples were taken, and what
// expect read at each URL in the last one.
func (g *gate) data(r *round, held bool) map[string]any {
	out := map[string]any{"samples": g.samples, "held": held, "took": dur(g.clock.Now().Sub(g.start))}
	switch {
	case g.prom != nil:
		out["prometheus"] = g.prom.URL()
	case g.m.URL != "":
		out["url"] = g.m.URL
	default:
		out["urls"] = append([]string(nil), g.urls...)
	}
	if r == nil {
		return out
	}
	values := map[string]any{}
	errs := map[string]any{}
	for _, o := range r.outs {
		v := make(map[string]any, len(o.reads))
		for _, rd := range o.reads {
			v[rd.key] = jsonValue(rd.value)
		}
		values[o.url] = v
		if o.err != nil {
			errs[o.url] = o.err.Error()
		}
	}
	out["values"] = values
	if len(errs) > 0 {
		out["errors"] = errs
	}
	return out
}

// jsonValue keeps a value JSON-safe: JSON has no NaN or infinities.
func jsonValue(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return formatFloat(f)
	}
	return v
}

func formatReads(reads []read) string {
	parts := make([]string, len(reads))
	for i, rd := range reads {
		v := fmt.Sprint(rd.value)
		if f, ok := rd.value.(float64); ok {
			v = formatFloat(f)
		}
		parts[i] = rd.key + "=" + v
	}
	return strings.Join(parts, ", ")
}

// dur is a duration in the result: "20s", "1.5s".
func dur(d time.Duration) string { return probe.Dur(d.Round(time.Millisecond)) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// shorten puts an expression on one line for a message.
func shorten(s string) string { return strings.Join(strings.Fields(s), " ") }
