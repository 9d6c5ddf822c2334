// Package argcheck holds the checks that several modules' Validate methods make
// of one argument: absolute paths, host:port addresses, URLs, signal names.
package argcheck

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

// Templated reports whether s still holds a {{ }} part. Validate normally sees
// rendered values; a value it sees unrendered is checked per host after rendering.
func Templated(s string) bool { return strings.Contains(s, "{{") }

// AbsPath checks that p is an absolute, clean path on the host. Relative paths are
// refused because they would resolve against whatever the remote working
// directory happens to be.
func AbsPath(p string) error {
	switch {
	case Templated(p):
		return nil
	case p == "":
		return fmt.Errorf("is empty; give an absolute path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is relative; give an absolute path on the host, like /%s", p, strings.TrimPrefix(p, "./"))
	case p != "/" && strings.HasSuffix(p, "/"):
		return fmt.Errorf("%q ends in /; name a file, not a folder", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path; write %q", p, path.Clean(p))
	}
	return nil
}

// HostPort checks that s is host:port with a port from 1 to 65535.
func HostPort(s string) error {
	if Templated(s) {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (IPv6 hosts in brackets: [::1]:2379)", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; write 127.0.0.1:%s or the host's name", s, port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

// URL checks that s is an absolute http or https URL with a host.
func URL(s string) error {
	if Templated(s) {
		return nil
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q: want an http:// or https:// URL, like http://127.0.0.1:2379/health", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, unwrapURLError(err))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Signals are the signal names a stop may send, without the SIG prefix.
var Signals = []string{"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM"}

// Signal checks a signal name: TERM or SIGTERM, in capitals as kill(1) lists them.
func Signal(s string) error {
	name := strings.TrimPrefix(s, "SIG")
	for _, ok := range Signals {
		if name == ok {
			return nil
		}
	}
	return fmt.Errorf("%q is not a signal this module sends; use one of %s", s, strings.Join(Signals, ", "))
}

// OneOf checks that s is one of the allowed values, suggesting the nearest;
// what names the kind of value with its article ("a port state").
func OneOf(what, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	for _, a := range allowed {
		if strings.EqualFold(s, a) {
			return fmt.Errorf("%q is not %s; did you mean %q?", s, what, a)
		}
	}
	if hint := diag.Suggest(s, allowed); hint != "" {
		return fmt.Errorf("%q is not %s; %s", s, what, hint)
	}
	return fmt.Errorf("%q is not %s; use one of %s", s, what, strings.Join(allowed, ", "))
}
