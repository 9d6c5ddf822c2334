package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// Client returns an HTTP client for one probe. roots are the CAs to trust (nil:
// the system's); certificates are always verified. Keep-alives are off: a
// probe is one request, and an idle connection would outlive the step.
func Client(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr, Timeout: timeout}
}

// HTTPError says why a request got no response, without Go's "Get "URL":"
// prefix, which repeats what the caller already says.
func HTTPError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// URL checks that a URL answers 2xx to a GET as the host sees it: on a local
// host, from here; on a remote host with curl there; where the host has no
// curl, from the controller, to the host's own address when the URL names a
// loopback one (the certificate is still checked against the URL's name).
type URL struct {
	h      *modules.Host
	url    string
	noCurl bool
}

// NewURL returns a probe of rawURL from h.
func NewURL(h *modules.Host, rawURL string) *URL { return &URL{h: h, url: rawURL} }

// Try requests the URL once. An error is a failure of the probe itself.
func (u *URL) Try(ctx context.Context, timeout time.Duration) (ok bool, seen string, err error) {
	if !IsLocal(u.h) && !u.noCurl {
		ok, seen, usable, err := u.curl(ctx, timeout)
		if err != nil || usable {
			return ok, seen, err
		}
		u.noCurl = true
		u.h.Log.Debug().Str("url", u.url).Msg("no curl on the host; requesting the URL from the controller")
	}
	return u.get(ctx, timeout)
}

func (u *URL) curl(ctx context.Context, timeout time.Duration) (ok bool, seen string, usable bool, err error) {
	secs := int((timeout + time.Second - 1) / time.Second)
	cmd := conn.Cmd{Argv: []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
		"--max-time", strconv.Itoa(max(secs, 1)), "--url", u.url},
		Become: u.h.Become, BecomeUser: u.h.BecomeUser}
	rctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	out, err := u.h.Conn.Run(rctx, cmd)
	var ee *conn.ExitError
	switch {
	case err == nil:
		code := strings.TrimSpace(string(out.Stdout))
		n, perr := strconv.Atoi(code)
		if perr != nil {
			return false, "", true, fmt.Errorf("curl printed %q for %s, not a status code", code, u.url)
		}
		return n >= 200 && n < 300, fmt.Sprintf("GET %s: status %d (curl on the host)", u.url, n), true, nil
	case errors.As(err, &ee) && (ee.ExitCode == 127 || ee.ExitCode == 126):
		return false, "", false, nil
	case errors.As(err, &ee):
		// curl's own failures (7: refused, 28: timeout, 60: certificate) mean
		// not ready yet; its message says which.
		return false, fmt.Sprintf("GET %s: %s (curl on the host)", u.url, firstLine(strings.TrimSpace(string(out.Stderr)))), true, nil
	case ctx.Err() != nil:
		return false, "", true, ctx.Err()
	case rctx.Err() != nil:
		return false, cmd.String() + " did not finish in time", true, nil
	}
	return false, "", true, fmt.Errorf("requesting %s on %s: %w", u.url, u.h.Name, err)
}

func (u *URL) get(ctx context.Context, timeout time.Duration) (bool, string, error) {
	target, err := url.Parse(u.url)
	if err != nil {
		return false, "", fmt.Errorf("%q is not a URL: %w", u.url, err)
	}
	from := ""
	origHost, orig := target.Host, target.Hostname()
	if !IsLocal(u.h) {
		host, err := Viewpoint(u.h, orig)
		if err != nil {
			return false, "", fmt.Errorf("requesting %s: no curl on the host, and %w", u.url, err)
		}
		if host != orig {
			from = " (from the controller, at " + host + ")"
			if p := target.Port(); p != "" {
				host = net.JoinHostPort(host, p)
			} else if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			target.Host = host
		}
	}
	client := Client(nil, timeout)
	if tr, ok := client.Transport.(*http.Transport); ok {
		tr.TLSClientConfig.ServerName = orig
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return false, "", fmt.Errorf("requesting %s: %w", u.url, err)
	}
	req.Host = origHost
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, "", ctx.Err()
		}
		return false, fmt.Sprintf("GET %s: %s%s", u.url, HTTPError(err), from), nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	return ok, fmt.Sprintf("GET %s: status %d%s", u.url, resp.StatusCode, from), nil
}
