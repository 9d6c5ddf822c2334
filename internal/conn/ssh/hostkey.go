package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

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
	cache   map[string]*knownDB // by the joined list of files
	writeMu sync.Mutex          // one recording at a time
}

// knownDB is parsed known_hosts files: the knownhosts callback (which also
// checks host certificates against @cert-authority lines, through
// ssh.CertChecker) and where the @cert-authority lines are, which the
// callback's answers do not say.
type knownDB struct {
	cb ssh.HostKeyCallback
	ca map[fileLine]bool
}

type fileLine struct {
	file string
	line int
}

// isCA reports whether a known key came from a @cert-authority line.
func (db *knownDB) isCA(k knownhosts.KnownKey) bool { return db.ca[fileLine{k.Filename, k.Line}] }

// split separates the known keys of a host into plain keys and CAs.
func (db *knownDB) split(want []knownhosts.KnownKey) (plain, cas []knownhosts.KnownKey) {
	for _, w := range want {
		if db.isCA(w) {
			cas = append(cas, w)
		} else {
			plain = append(plain, w)
		}
	}
	return plain, cas
}

// knownHostsName is how known_hosts writes an address: host for port 22,
// [host]:port otherwise.
func knownHostsName(addr string) string { return knownhosts.Normalize(addr) }

func cacheKey(files []string) string { return strings.Join(files, "\x00") }

// db returns the parsed known_hosts files (missing files are skipped: they
// list no host).
func (k *hostKeys) db(files []string) (*knownDB, error) {
	k.cacheMu.Lock()
	defer k.cacheMu.Unlock()
	if db, ok := k.cache[cacheKey(files)]; ok {
		return db, nil
	}
	var existing []string
	db := &knownDB{ca: map[fileLine]bool{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		existing = append(existing, f)
		// Lines numbered as knownhosts numbers them.
		for i, line := range strings.Split(string(data), "\n") {
			if w, _, _ := strings.Cut(strings.TrimLeft(line, " \t"), " "); w == "@cert-authority" {
				db.ca[fileLine{f, i + 1}] = true
			}
		}
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts: %w", err)
	}
	db.cb = cb
	if k.cache == nil {
		k.cache = map[string]*knownDB{}
	}
	k.cache[cacheKey(files)] = db
	return db, nil
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

// certOrder is OpenSSH's preference among host certificates, asked for
// first when a @cert-authority line covers the host. The SHA-1 RSA
// certificate is left out, as OpenSSH does by default.
var certOrder = []string{
	ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
}

// fakeRemote stands for the remote address when the callback is probed; the
// hostname given first is what is looked up.
var fakeRemote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}

// algorithms returns the host key algorithms to offer for addr: those of the
// keys known_hosts has for it, so that a host known by its ed25519 key is not
// asked for the RSA key it may prefer (which would look like a changed key).
// For a host not known, OpenSSH's order, so that the key recorded (or shown
// to be added) is the one ssh itself would record.
//
// When a @cert-authority line covers addr, certificates come first, then the
// plain keys known (or OpenSSH's order when none is): as OpenSSH does, a
// host that shows no certificate is then checked by its plain key.
func (k *hostKeys) algorithms(files []string, addr string) ([]string, []knownhosts.KnownKey, error) {
	db, err := k.db(files)
	if err != nil {
		return nil, nil, err
	}
	var ke *knownhosts.KeyError
	if !errors.As(db.cb(addr, fakeRemote, probeKey{}), &ke) || len(ke.Want) == 0 {
		return opensshOrder, nil, nil
	}
	plain, cas := db.split(ke.Want)
	if len(cas) > 0 {
		algos := slices.Clone(certOrder)
		if len(plain) == 0 {
			return append(algos, opensshOrder...), nil, nil
		}
		rest, _, err := plainAlgorithms(plain)
		return append(algos, rest...), plain, err
	}
	return plainAlgorithms(plain)
}

// plainAlgorithms returns the algorithms of the known plain keys.
func plainAlgorithms(want []knownhosts.KnownKey) ([]string, []knownhosts.KnownKey, error) {
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
	for _, w := range want {
		if t := w.Key.Type(); t == ssh.KeyAlgoRSA {
			// One RSA key signs with any of these; ssh-rsa (SHA-1) last.
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos, want, nil
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
		db, err := k.db(files)
		if err != nil {
			return err
		}
		if cert, ok := key.(*ssh.Certificate); ok {
			// Never recorded, even with accept-new: a certificate is
			// trusted through its CA or not at all.
			return checkCert(db, addr, remote, cert, time.Now())
		}
		err = classify(db, db.cb(addr, remote, key), files, addr, key)
		var he *HostKeyError
		if !k.acceptNew || !errors.As(err, &he) || he.Problem != HostKeyUnknown {
			return err
		}
		return k.record(files, addr, remote, key, hashed)
	}
}

// classify turns the knownhosts package's answer into a *HostKeyError.
func classify(db *knownDB, err error, files []string, addr string, key ssh.PublicKey) error {
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
	// A host covered by a CA that shows a plain key is checked by that key
	// alone, as OpenSSH does: the CA is no record of a key that changed.
	want, _ := db.split(ke.Want)
	if len(want) == 0 {
		e := shown(HostKeyUnknown)
		e.File, e.AddLine = files[0], knownhosts.Line([]string{addr}, key)
		return e
	}
	// Name the record of the same type when there is one: that is the key
	// that changed.
	known := want[0]
	for _, w := range want {
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
	db, err := k.db(files)
	if err != nil {
		return err
	}
	err = classify(db, db.cb(addr, remote, key), files, addr, key)
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

// checkCert checks a host certificate as OpenSSH does: signed by a CA that a
// @cert-authority line trusts for addr, a host certificate, naming the host
// as dialed among its principals (a certificate naming none is refused: it
// would be good for every host), within its validity window, and neither it,
// its key nor its CA @revoked. Each refusal says which rule failed.
//
// As OpenSSH does, a certificate that fails (but is not revoked) is then
// taken for its plain key, which passes when a plain line of known_hosts
// lists that key for addr: the operator trusted the key itself.
func checkCert(db *knownDB, addr string, remote net.Addr, cert *ssh.Certificate, now time.Time) error {
	he := certProblem(db, addr, remote, cert, now)
	if he == nil {
		return nil
	}
	if he.Problem == HostKeyRevoked {
		return he
	}
	var ke *knownhosts.KeyError
	if errors.As(db.cb(addr, remote, probeKey{}), &ke) {
		plain, _ := db.split(ke.Want)
		for _, w := range plain {
			if bytes.Equal(w.Key.Marshal(), cert.Key.Marshal()) {
				return nil
			}
		}
	}
	return he
}

// certProblem is what is wrong with a host certificate for addr, or nil.
func certProblem(db *knownDB, addr string, remote net.Addr, cert *ssh.Certificate, now time.Time) *HostKeyError {
	bad := func(reason string) *HostKeyError {
		return &HostKeyError{Problem: HostKeyBadCertificate, Addr: addr, KeyType: cert.Type(),
			Fingerprint: ssh.FingerprintSHA256(cert.Key), Reason: reason}
	}
	// @revoked lines for the host key or the CA, with their place.
	for _, k := range []ssh.PublicKey{cert.Key, cert.SignatureKey} {
		var revoked *knownhosts.RevokedError
		if errors.As(db.cb(addr, remote, k), &revoked) {
			e := bad("")
			e.Problem, e.File, e.Line = HostKeyRevoked, revoked.Revoked.Filename, revoked.Revoked.Line
			return e
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return bad(err.Error())
	}
	ca := "CA " + cert.SignatureKey.Type() + " " + ssh.FingerprintSHA256(cert.SignatureKey)
	switch {
	case cert.CertType != ssh.HostCert:
		return bad("it is a user certificate, not a host certificate")
	case len(cert.ValidPrincipals) == 0:
		return bad(fmt.Sprintf("it names no principal (signed by %s), so it would be good for any host; reissue it with ssh-keygen -h -n %s", ca, host))
	case !slices.Contains(cert.ValidPrincipals, host):
		return bad(fmt.Sprintf("it is for %s, not for %q, the name it was dialed by (signed by %s); dial the host by one of those names, or reissue the certificate with ssh-keygen -h -n including %s",
			strings.Join(cert.ValidPrincipals, ", "), host, ca, host))
	case cert.ValidAfter != 0 && now.Before(time.Unix(int64(min(cert.ValidAfter, 1<<62)), 0)):
		return bad(fmt.Sprintf("it is not valid before %s", certTime(cert.ValidAfter)))
	case cert.ValidBefore != ssh.CertTimeInfinity && !now.Before(time.Unix(int64(min(cert.ValidBefore, 1<<62)), 0)):
		return bad(fmt.Sprintf("it expired at %s", certTime(cert.ValidBefore)))
	}
	checker := &ssh.CertChecker{Clock: func() time.Time { return now }}
	if err := db.cb(addr, remote, cert); err != nil {
		if strings.Contains(err.Error(), "no authorities for hostname") {
			return bad(fmt.Sprintf("it is signed by %s, which no @cert-authority line of the known_hosts files trusts for %s; add one (@cert-authority %s <CA public key>) once you have checked that CA", ca, knownHostsName(addr), knownHostsName(addr)))
		}
		return bad(strings.TrimPrefix(err.Error(), "ssh: "))
	}
	// The knownhosts callback checked it already; this makes the signature
	// check independent of how that package orders its checks.
	if err := checker.CheckCert(host, cert); err != nil {
		return bad(strings.TrimPrefix(err.Error(), "ssh: "))
	}
	return nil
}

func certTime(t uint64) string {
	if t > 1<<62 {
		return "forever"
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}
