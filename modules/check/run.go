package check

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/internal/probe"
)

// MaxBody is how much of an HTTP response body a probe reads: what expect,
// body_contains and the journal see. Metrics pages and health documents are
// far smaller; a larger body is cut, and result.body_truncated says so.
const MaxBody = 1 << 20

// defaultExpect is what a command must satisfy when the step has no expect.
const defaultExpect = "result.rc == 0"

// Run runs the probe and fails unless it passes. It never changes anything.
func (m *Module) Run(ctx context.Context, h *modules.Host) (modules.Result, error) {
	d := m.Defaults()
	var (
		data map[string]any
		err  error
	)
	switch {
	case len(d.Command) > 0:
		data, err = d.command(ctx, h)
	case d.HTTP != nil:
		data, err = d.HTTP.probe(ctx, h)
	case d.TCP != nil:
		data, err = d.TCP.probe(ctx)
	case d.Etcd != nil:
		data, err = d.Etcd.Probe(ctx, h)
	default:
		return modules.Result{}, errors.New("no probe given; give one of command, http, tcp or etcd")
	}
	return modules.Result{Data: data}, err
}

// Check runs the same probe as Run: a probe only reads, so --check shows
// whether it would pass. A command probe runs its command, which must
// therefore be one that changes nothing.
func (m *Module) Check(ctx context.Context, h *modules.Host) (modules.Result, error) {
	return m.Run(ctx, h)
}

// command runs the program on the host and judges it with expect.
func (m *Module) command(ctx context.Context, h *modules.Host) (map[string]any, error) {
	c := conn.Cmd{Argv: slices.Clone([]string(m.Command)), Become: h.Become, BecomeUser: h.BecomeUser}
	out, err := h.Conn.Run(ctx, c)
	var ee *conn.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("check %s on %s: %w", c, h.Name, err)
	}
	data := map[string]any{
		"rc":     out.ExitCode,
		"stdout": strings.TrimRight(string(out.Stdout), "\r\n"),
		"stderr": strings.TrimRight(string(out.Stderr), "\r\n"),
	}
	saw := func() string {
		return fmt.Sprintf("%s gave rc %d, stdout %s, stderr %s", c, out.ExitCode, quote(data["stdout"].(string)), quote(data["stderr"].(string)))
	}
	if m.Expect.Src == "" {
		if out.ExitCode != 0 {
			return data, fmt.Errorf("expect `%s` (the default) is false: %s", defaultExpect, saw())
		}
		return data, nil
	}
	return data, expect(h, "expect", m.Expect, data, saw)
}

// probe sends the request from the controller and judges the response.
func (p *HTTP) probe(ctx context.Context, h *modules.Host) (map[string]any, error) {
	var roots *x509.CertPool
	if p.CAFile != "" {
		var err error
		if roots, err = loadCA(h, p.CAFile); err != nil {
			return nil, err
		}
	}
	client := probe.Client(roots, p.Timeout.Std())
	req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("http: %s %s: %w", p.Method, p.URL, err)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Headers)) {
		if strings.EqualFold(k, "Host") {
			req.Host = p.Headers[k]
			continue
		}
		req.Header.Set(k, p.Headers[k])
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("http: %s %s: %w", p.Method, p.URL, ctx.Err())
		}
		return nil, fmt.Errorf("http: %s %s from the controller: %s", p.Method, p.URL, probe.HTTPError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("http: %s %s: reading the response: %s", p.Method, p.URL, probe.HTTPError(err))
	}
	truncated := len(body) > MaxBody
	if truncated {
		body = body[:MaxBody]
	}
	headers := map[string]any{}
	for k, v := range resp.Header {
		headers[k] = strings.Join(v, ", ")
	}
	data := map[string]any{
		"url":            p.URL,
		"status":         resp.StatusCode,
		"body":           string(body),
		"body_truncated": truncated,
		"json":           decodeJSON(body),
		"headers":        headers,
	}
	saw := func() string {
		return fmt.Sprintf("%s %s gave status %d, body %s", p.Method, p.URL, resp.StatusCode, quote(string(body)))
	}
	if !slices.Contains(p.Status, resp.StatusCode) {
		return data, fmt.Errorf("http: status %d is not %s: %s", resp.StatusCode, statusList(p.Status), saw())
	}
	if p.BodyContains != "" && !strings.Contains(string(body), p.BodyContains) {
		return data, fmt.Errorf("http: the body does not contain %q: %s", p.BodyContains, saw())
	}
	if p.Expect.Src != "" {
		return data, expect(h, "http.expect", p.Expect, data, saw)
	}
	return data, nil
}

// loadCA reads ca_file on the controller, relative to the runbook's folder.
func loadCA(h *modules.Host, file string) (*x509.CertPool, error) {
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(h.RunbookDir, path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("http.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("http.ca_file: %s holds no PEM certificate (want the CA's certificate, -----BEGIN CERTIFICATE-----)", path)
	}
	return pool, nil
}

// decodeJSON returns the body decoded when it is JSON, else nil; numbers are
// float64, as they will be when the journal is read back.
func decodeJSON(body []byte) any {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(trimmed, &v) != nil {
		return nil
	}
	return v
}

func statusList(s Statuses) string {
	if len(s) == 1 {
		return strconv.Itoa(s[0])
	}
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = strconv.Itoa(c)
	}
	return "one of " + strings.Join(parts, ", ")
}

// probe connects from the controller.
func (p *TCP) probe(ctx context.Context) (map[string]any, error) {
	open, seen := probe.Dial(ctx, p.Addr, p.Timeout.Std())
	if ctx.Err() != nil {
		return nil, fmt.Errorf("tcp: %s: %w", p.Addr, ctx.Err())
	}
	data := map[string]any{"addr": p.Addr, "open": open, "seen": seen}
	switch {
	case p.Closed && open:
		return data, fmt.Errorf("tcp: %s is open, and closed: true wants nothing listening there", p.Addr)
	case !p.Closed && !open:
		return data, fmt.Errorf("tcp: %s (from the controller, timeout %s)", seen, probe.Dur(p.Timeout.Std()))
	}
	return data, nil
}

// expect evaluates e over result in the step's scope (registered results,
// vars, host), and says what the probe saw when it does not hold. An
// expression the loader did not compile (a module built by hand) is compiled
// here.
func expect(h *modules.Host, name string, e arg.Expr, result map[string]any, saw func() string) error {
	prog := e.Program
	if prog == nil {
		p, ds := eval.Compile(e.Src, e.Pos, &eval.Env{Result: true, Vars: h.Vars}, eval.Bool)
		if err := ds.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		prog = p
	}
	// The step's scope is shared with its other expressions: copy it, so
	// that setting result here is seen nowhere else.
	scope := eval.Scope{Vars: h.Vars, Host: eval.Host{Name: h.Name, Addr: h.Addr, Vars: h.Vars}}
	if h.Scope != nil {
		scope = *h.Scope
	}
	scope.Result = result
	ok, err := prog.Bool(&scope)
	if err != nil {
		return fmt.Errorf("%s: %w; %s", name, err, saw())
	}
	if !ok {
		return fmt.Errorf("%s%s `%s` is false: %s", at(e), name, e.Src, saw())
	}
	return nil
}

// at is the expression's position as a message prefix, when it is known.
func at(e arg.Expr) string {
	if !e.Pos.IsValid() {
		return ""
	}
	return e.Pos.String() + ": "
}

// quote shows probe output in a message: quoted, on one line, cut short.
func quote(s string) string {
	const max = 200
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}
