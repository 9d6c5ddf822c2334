package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks host keys against known_hosts files, as OpenSSH's
// StrictHostKeyChecking=yes does, or accept-new when asked. It caches the
// parsed files and parses them again after it records a key.
type hostKeys struct {
	acceptNew bool
	log       zerolog.Logger

	cacheMu sync.Mutex
	cache   map[string]ssh.HostKeyCallback // by the joined list of files
	writeMu sync.Mutex                     // one recording at a time
}

// knownHostsName is how known_hosts writes an address: host for port 22,
// [host]:port otherwise.
func knownHostsName(addr string) string { return knownhosts.Normalize(addr) }

func cacheKey(files []string) string { return strings.Join(files, "\x00") }

// callback returns the knownhosts callback for files (missing files are
// skipped: they list no host).
func (k *hostKeys) callback(files []string) (ssh.HostKeyCallback, error) {
	k.cacheMu.Lock()
	defer k.cacheMu.Unlock()
	if cb, ok := k.cache[cacheKey(files)]; ok {
		return cb, nil
	}
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts: %w", err)
	}
	if k.cache == nil {
		k.cache = map[string]ssh.HostKeyCallback{}
	}
	k.cache[cacheKey(files)] = cb
	return cb, nil
}

func (k *hostKeys) forget(files []string) {
	k.cacheMu.Lock()
	delete(k.cache, cacheKey(files))
	k.cacheMu.Unlock()
}

// probeKey is a key no host has: checking it returns every key known for the
// host, which is how the host key algorithms are chosen.
type probeKey struct{}

func (probeKey) Type() string                        { return "runbook-probe" }
func (probeKey) Marshal() []byte                     { return []byte("\x00\x00\x00\x0drunbook-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// opensshOrder is OpenSSH's preference among plain host keys.
var opensshOrder = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// fakeRemote stands for the remote address when the callback is probed; the
// hostname given first is what is looked up.
var fakeRemote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

// algorithms returns the host key algorithms to offer for addr: those of the
// keys known_hosts has for it, so that a host known by its ed25519 key is not
// asked for the RSA key it may prefer (which would look like a changed key).
// For a host not known, OpenSSH's order, so that the key recorded (or shown
// to be added) is the one ssh itself would record.
func (k *hostKeys) algorithms(files []string, addr string) ([]string, []knownhosts.KnownKey, error) {
	cb, err := k.callback(files)
	if err != nil {
		return nil, nil, err
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(addr, fakeRemote, probeKey{}), &ke) || len(ke.Want) == 0 {
		return opensshOrder, nil, nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				algos = append(algos, x)
			}
		}
	}
	for _, w := range ke.Want {
		if t := w.Key.Type(); t == ssh.KeyAlgoRSA {
			// One RSA key signs with any of these; ssh-rsa (SHA-1) last.
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos, ke.Want, nil
}

// noCommonType is the error for a host that offers none of the key types
// known_hosts has for it: as suspect as a changed key.
func noCommonType(addr string, known []knownhosts.KnownKey, err error) error {
	k := known[0]
	return &HostKeyError{Problem: HostKeyChanged, Addr: addr, KeyType: "(none of the known types)",
		Fingerprint: "offered " + strings.TrimPrefix(err.Error(), "ssh: handshake failed: "),
		File:        k.Filename, Line: k.Line, KnownType: k.Key.Type(), KnownFingerprint: ssh.FingerprintSHA256(k.Key)}
}

// check returns the HostKeyCallback for handshakes with hosts whose keys are
// in files (the first is where new keys are recorded). Problems come back as
// *HostKeyError. hashed records new hosts hashed (HashKnownHosts).
func (k *hostKeys) check(files []string, hashed bool) ssh.HostKeyCallback {
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		cb, err := k.callback(files)
		if err != nil {
			return err
		}
		err = classify(cb(addr, remote, key), files, addr, key)
		var he *HostKeyError
		if !k.acceptNew || !errors.As(err, &he) || he.Problem != HostKeyUnknown {
			return err
		}
		return k.record(files, addr, remote, key, hashed)
	}
}

// classify turns the knownhosts package's answer into a *HostKeyError.
func classify(err error, files []string, addr string, key ssh.PublicKey) error {
	if err == nil {
		return nil
	}
	shown := func(p HostKeyProblem) *HostKeyError {
		return &HostKeyError{Problem: p, Addr: addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
	}
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		e := shown(HostKeyRevoked)
		e.File, e.Line = revoked.Revoked.Filename, revoked.Revoked.Line
		return e
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	if len(ke.Want) == 0 {
		e := shown(HostKeyUnknown)
		e.File, e.AddLine = files[0], knownhosts.Line([]string{addr}, key)
		return e
	}
	// Name the record of the same type when there is one: that is the key
	// that changed.
	known := ke.Want[0]
	for _, w := range ke.Want {
		if w.Key.Type() == key.Type() {
			known = w
			break
		}
	}
	e := shown(HostKeyChanged)
	e.File, e.Line = known.Filename, known.Line
	e.KnownType, e.KnownFingerprint = known.Key.Type(), ssh.FingerprintSHA256(known.Key)
	return e
}

// record appends the key of a host seen for the first time to the first file
// (accept-new), unless a key for addr was recorded meanwhile, by another dial
// or another runbook: then that record decides.
func (k *hostKeys) record(files []string, addr string, remote net.Addr, key ssh.PublicKey, hashed bool) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	file := files[0]
	fail := func(err error) error { return fmt.Errorf("recording the host key of %s in %s: %w", addr, file, err) }
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fail(err)
	}
	k.forget(files)
	cb, err := k.callback(files)
	if err != nil {
		return err
	}
	err = classify(cb(addr, remote, key), files, addr, key)
	var he *HostKeyError
	if !errors.As(err, &he) || he.Problem != HostKeyUnknown {
		return err
	}

	line := knownhosts.Line([]string{addr}, key)
	if hashed {
		line = knownhosts.HashHostname(knownHostsName(addr)) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fail(err)
	}
	text := line + "\n"
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		text = "\n" + text
	}
	if _, err := f.WriteString(text); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	k.forget(files)
	k.log.Warn().Str("host", addr).Str("key", key.Type()+" "+ssh.FingerprintSHA256(key)).Str("known_hosts", file).
		Msg("recorded the host key of a host seen for the first time (--accept-new-host-keys)")
	return nil
}
