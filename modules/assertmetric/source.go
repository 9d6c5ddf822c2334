package assertmetric

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/runbookhq/runbook/modules"
)

// ScrapeOptions says how a Source reaches its endpoints, as assert-metric's
// own arguments do; files are read on the controller, relative to the
// runbook's folder.
type ScrapeOptions struct {
	Timeout  time.Duration
	Headers  map[string]string
	CAFile   string
	CertFile string
	KeyFile  string
}

// Source scrapes endpoints as assert-metric does, for modules that judge
// other expressions over a scrape (analysis). Each endpoint's first scrape
// is the baseline of delta and quantile_delta.
type Source struct {
	scraper  *scraper
	trackers map[string]*tracker
}

// NewSource returns a Source with one client for all its scrapes.
func NewSource(h *modules.Host, o ScrapeOptions) (*Source, error) {
	m := &Module{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile}
	client, err := m.client(h)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return &Source{
		scraper:  &scraper{client: client, headers: o.Headers, timeout: o.Timeout, maxPage: MaxPage, clientCert: o.CertFile != ""},
		trackers: map[string]*tracker{},
	}, nil
}

// Close lets go of the connections kept open between scrapes.
func (s *Source) Close() { s.scraper.client.CloseIdleConnections() }

// Reading is one scrape of one endpoint: the metric functions bound to it,
// for an expression's scope, and what they read once it has run.
type Reading struct {
	r *reader
	// Baseline says this was the endpoint's first scrape, which delta and
	// quantile_delta measure from: they read 0 in it.
	Baseline bool
}

// Funcs returns the functions (metric, sum, delta, ...) bound to this scrape.
func (r *Reading) Funcs() map[string]any { return maps.Clone(r.r.funcs()) }

// Reads says what the functions read, "name{labels}=value, ...", in the order
// they were first called.
func (r *Reading) Reads() string { return formatReads(r.r.reads) }

// Values is what the functions read, by key, JSON-safe.
func (r *Reading) Values() map[string]any {
	out := make(map[string]any, len(r.r.reads))
	for _, rd := range r.r.reads {
		out[rd.key] = jsonValue(rd.value)
	}
	return out
}

// IsUsageError reports an error of a function that no scrape can fix (a
// quantile out of 0 to 1): the caller should stop rather than retry.
func IsUsageError(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

// Scrape fetches url once and returns its reading.
func (s *Source) Scrape(ctx context.Context, url string) (*Reading, error) {
	p, err := s.scraper.scrape(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	t := s.trackers[url]
	if t == nil {
		t = newTracker()
		s.trackers[url] = t
	}
	first := !t.started
	t.observe(p)
	return &Reading{r: newReader(p, t), Baseline: first}, nil
}

// FuncTypes declares the functions of a Reading for the loader, so that a
// call with arguments of the wrong type is a load error.
func FuncTypes() map[string]any { return (&Module{}).ExprNames("expect") }
