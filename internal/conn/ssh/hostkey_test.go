package ssh_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

func TestHostKeys(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	ed, rsaKey := s.HostKeys[0].Public(), s.HostKeys[1].Public()
	other := sshtest.NewEd25519(t).Public()
	addr := s.Addr(0)
	name := knownhosts.Normalize(addr)

	// dialWith dials the first address trusting the known_hosts text given.
	dialWith := func(t *testing.T, text string, acceptNew bool) (string, error) {
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		if text != "" {
			writeFile(t, kh, text, 0o600)
		}
		o := options(t, s)
		o.KnownHostsFiles = []string{kh}
		o.AcceptNewHostKeys = acceptNew
		d := newDialer(t, o)
		c, err := d.Dial(ctxT(t), target(s, 0))
		if err == nil {
			defer c.Close()
			if _, err := c.Run(ctxT(t), conn.Cmd{Argv: []string{"true"}}); err != nil {
				t.Fatalf("connected, but: %v", err)
			}
		}
		return kh, err
	}
	line := func(k ssh.PublicKey) string { return knownhosts.Line([]string{addr}, k) + "\n" }

	t.Run("known keys work, whichever types known_hosts has", func(t *testing.T) {
		t.Parallel()
		for what, text := range map[string]string{
			"ed25519 only": line(ed),
			"rsa only":     line(rsaKey),
			"both":         line(rsaKey) + line(ed),
			"hashed":       knownhosts.HashHostname(name) + " " + string(ssh.MarshalAuthorizedKey(ed)),
			"pattern":      "[127.0.0.6?]:" + strings.TrimPrefix(name, "[127.0.0.61]:") + " " + string(ssh.MarshalAuthorizedKey(rsaKey)),
			"comments":     "# a comment\n\nother.example " + string(ssh.MarshalAuthorizedKey(other)) + line(ed),
		} {
			if _, err := dialWith(t, text, false); err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
	})

	t.Run("unknown host is refused with the fingerprint and the line to add", func(t *testing.T) {
		t.Parallel()
		kh, err := dialWith(t, "", false)
		if !conn.IsTransport(err) {
			t.Fatalf("err = %v, want a transport error", err)
		}
		he := errorAs[*rssh.HostKeyError](t, err)
		if he.Problem != rssh.HostKeyUnknown || he.File != kh {
			t.Errorf("problem %v in %q", he.Problem, he.File)
		}
		shown := ed
		if he.KeyType == rsaKey.Type() {
			shown = rsaKey
		}
		contains(t, err.Error(), ssh.FingerprintSHA256(shown), knownhosts.Line([]string{addr}, shown), kh, "--accept-new-host-keys")
		if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("known_hosts was written without --accept-new-host-keys: %v", err)
		}
	})

	t.Run("accept-new records the key, which then works without it", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "new", ".ssh")
		kh := filepath.Join(dir, "known_hosts")
		o := options(t, s)
		o.KnownHostsFiles = []string{kh}
		o.AcceptNewHostKeys = true
		d := newDialer(t, o)
		// Three addresses at once, as the engine dials them.
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				c, err := d.Dial(ctxT(t), target(s, i))
				if err == nil {
					c.Close()
				}
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		fi, err := os.Stat(kh)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts mode = %v, want 0600", fi.Mode())
		}
		data, _ := os.ReadFile(kh)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 3 {
			t.Errorf("known_hosts has %d lines, want one per address:\n%s", len(lines), data)
		}
		o.AcceptNewHostKeys = false
		for i := range 3 {
			dial(t, newDialer(t, o), target(s, i))
		}
	})

	t.Run("HashKnownHosts in the ssh config records hashed names", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		cfg := writeFile(t, filepath.Join(dir, "config"), "Host *\n  HashKnownHosts yes\n", 0o600)
		o := options(t, s)
		o.KnownHostsFiles, o.ConfigFile, o.AcceptNewHostKeys = []string{kh}, cfg, true
		dial(t, newDialer(t, o), target(s, 1))
		data, _ := os.ReadFile(kh)
		if !strings.HasPrefix(string(data), "|1|") || strings.Contains(string(data), "127.0.0.62") {
			t.Errorf("known_hosts = %q, want a hashed name", data)
		}
		o.AcceptNewHostKeys = false
		dial(t, newDialer(t, o), target(s, 1))
	})

	t.Run("changed key is refused loudly, also with accept-new", func(t *testing.T) {
		t.Parallel()
		for _, acceptNew := range []bool{false, true} {
			text := "# first line\n" + knownhosts.Line([]string{addr}, other) + "\n"
			kh, err := dialWith(t, text, acceptNew)
			he := errorAs[*rssh.HostKeyError](t, err)
			if !conn.IsTransport(err) || he.Problem != rssh.HostKeyChanged || he.File != kh || he.Line != 2 {
				t.Fatalf("err = %v (%+v)", err, he)
			}
			contains(t, err.Error(), "HOST KEY CHANGED", kh+":2", ssh.FingerprintSHA256(other), "ssh-keygen -R", "man-in-the-middle")
			if data, _ := os.ReadFile(kh); string(data) != text {
				t.Errorf("known_hosts changed to %q", data)
			}
		}
	})

	t.Run("a key of another type for the host counts as changed", func(t *testing.T) {
		t.Parallel()
		// The server has no ECDSA key: it cannot show one, and must not be
		// trusted with its others.
		k, err := ssh.ParsePublicKey(mustECDSA(t))
		if err != nil {
			t.Fatal(err)
		}
		_, err = dialWith(t, line(k), true)
		he := errorAs[*rssh.HostKeyError](t, err)
		if he.Problem != rssh.HostKeyChanged || he.KnownType != k.Type() {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("revoked key is refused", func(t *testing.T) {
		t.Parallel()
		text := "@revoked * " + string(ssh.MarshalAuthorizedKey(ed)) + "@revoked * " + string(ssh.MarshalAuthorizedKey(rsaKey))
		_, err := dialWith(t, text, true)
		he := errorAs[*rssh.HostKeyError](t, err)
		if he.Problem != rssh.HostKeyRevoked {
			t.Errorf("err = %v", err)
		}
		contains(t, err.Error(), "REVOKED")
	})

	t.Run("host key errors are not retried", func(t *testing.T) {
		t.Parallel()
		_, err := dialWith(t, line(other), false)
		var ue *rssh.UnreachableError
		if errors.As(err, &ue) {
			t.Errorf("a host key problem is reported as unreachable: %v", err)
		}
	})
}

// mustECDSA returns an ECDSA public key in wire format.
func mustECDSA(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub.Marshal()
}
