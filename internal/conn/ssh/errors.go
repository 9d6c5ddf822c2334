package ssh

import (
	"fmt"
	"strings"
	"time"
)

// The three ways a dial fails. Dial returns each wrapped in a
// *conn.TransportError, so the engine records the host as unreachable; the
// typed cause tells the operator which of the three it was (errors.As).

// UnreachableError is a network failure: nothing answered, the connection was
// refused or cut, or the SSH handshake did not finish within the connect
// timeout. These are retried; Attempts says how many were made.
type UnreachableError struct {
	Addr     string // host:port tried
	Via      string // the jump host it was tried through, if any
	Attempts int
	Err      error
}

func (e *UnreachableError) Error() string {
	via := ""
	if e.Via != "" {
		via = " via jump host " + e.Via
	}
	tries := ""
	if e.Attempts > 1 {
		tries = fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return fmt.Sprintf("cannot reach %s%s%s: %v", e.Addr, via, tries, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// AuthError is a host that answered and refused every credential offered.
// It is not retried: the same keys would be refused again.
type AuthError struct {
	Addr  string
	User  string
	Tried []string // what was offered: "agent key SHA256:…", "key file ~/.ssh/id_ed25519 (SHA256:…)"
	Err   error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s refused to log in user %q: %v", e.Addr, e.User, e.Err)
	if len(e.Tried) == 0 {
		b.WriteString("; no key was offered: set ansible_ssh_private_key_file, pass --private-key, add IdentityFile to the ssh config, or load a key into ssh-agent (SSH_AUTH_SOCK)")
	} else {
		fmt.Fprintf(&b, "; offered: %s", strings.Join(e.Tried, ", "))
	}
	return b.String()
}

func (e *AuthError) Unwrap() error { return e.Err }

// HostKeyProblem is what is wrong with a host key.
type HostKeyProblem int

const (
	// HostKeyUnknown: no known_hosts file lists the host.
	HostKeyUnknown HostKeyProblem = iota + 1
	// HostKeyChanged: the host is listed with other keys than the one it showed.
	HostKeyChanged
	// HostKeyRevoked: the key is marked @revoked.
	HostKeyRevoked
	// HostKeyBadCertificate: the host showed a certificate that is not
	// trusted for it (Reason says which rule it fails).
	HostKeyBadCertificate
)

// HostKeyError is a host whose key could not be trusted. It is never
// retried and there is no option to ignore it: a changed key is what a
// man-in-the-middle looks like.
type HostKeyError struct {
	Problem     HostKeyProblem
	Addr        string // host:port as checked
	KeyType     string // of the key the host showed
	Fingerprint string // SHA256:… of the key the host showed
	// File is the known_hosts file: where the line to add goes (unknown), or
	// the file that holds the other key (changed, revoked), at Line.
	File string
	Line int
	// KnownType and KnownFingerprint describe the key on record (changed).
	KnownType, KnownFingerprint string
	// AddLine is the known_hosts line that would trust the key shown (unknown).
	AddLine string
	// Reason says why a certificate is refused (bad certificate).
	Reason string
}

func (e *HostKeyError) Error() string {
	switch e.Problem {
	case HostKeyUnknown:
		return fmt.Sprintf("host key of %s is not known: the host shows %s key %s. Check that fingerprint out of band (ssh-keygen -lf on the host), then add this line to %s: %s -- or run again with --accept-new-host-keys to record the keys of hosts seen for the first time",
			e.Addr, e.KeyType, e.Fingerprint, e.File, e.AddLine)
	case HostKeyChanged:
		what := "a different key"
		if e.KnownType != e.KeyType {
			what = "a key of another type"
		}
		return fmt.Sprintf("HOST KEY CHANGED for %s: the host shows %s key %s, but %s:%d records %s (%s %s). Someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled. Refusing to connect. If the change is expected, remove the old key (ssh-keygen -R '%s' -f %s) and connect again",
			e.Addr, e.KeyType, e.Fingerprint, e.File, e.Line, what, e.KnownType, e.KnownFingerprint, knownHostsName(e.Addr), e.File)
	case HostKeyRevoked:
		return fmt.Sprintf("host key of %s is REVOKED: the host shows %s key %s, marked @revoked in %s:%d. Refusing to connect",
			e.Addr, e.KeyType, e.Fingerprint, e.File, e.Line)
	case HostKeyBadCertificate:
		return fmt.Sprintf("host certificate of %s is not trusted: the host shows %s for key %s, but %s. Refusing to connect",
			e.Addr, e.KeyType, e.Fingerprint, e.Reason)
	}
	return fmt.Sprintf("host key of %s: unknown problem %d", e.Addr, e.Problem)
}

// timeoutError is a handshake that did not finish within the connect timeout.
type timeoutError struct {
	d    time.Duration
	what string
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s did not finish within the connect timeout (%s)", e.what, e.d)
}

func (e *timeoutError) Timeout() bool { return true }
