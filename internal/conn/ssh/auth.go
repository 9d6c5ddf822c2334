package ssh

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// PassphraseEnv holds the passphrase of encrypted private keys, for runs
// without a terminal to ask on. It is read when a key needs it, never logged.
const PassphraseEnv = "RUNBOOK_SSH_PASSPHRASE"

// keyring reads each private key file once per Dialer and decrypts it at
// most once, when a host first accepts it, so a run over 500 hosts asks for
// a passphrase once and a key the agent holds is never decrypted.
type keyring struct {
	passphrase func(file string) ([]byte, error)

	mu   sync.Mutex
	keys map[string]*keyEntry
	ask  sync.Mutex // one passphrase question at a time
}

type keyEntry struct {
	file     string
	loadOnce sync.Once
	pub      ssh.PublicKey
	raw      []byte
	err      error // reading or parsing; fs.ErrNotExist for a missing file

	mu     sync.Mutex
	signer ssh.Signer // nil until decrypted
	decErr error      // a wrong passphrase is not asked again
}

func (k *keyring) entry(file string) *keyEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]*keyEntry{}
	}
	e := k.keys[file]
	if e == nil {
		e = &keyEntry{file: file}
		k.keys[file] = e
	}
	return e
}

// load reads the key file. An encrypted key is kept encrypted with its
// public half, which OpenSSH's format stores in the clear (else the .pub
// file beside it); only a key with neither is decrypted at once.
func (e *keyEntry) load() error {
	e.loadOnce.Do(func() {
		data, err := os.ReadFile(e.file)
		if err != nil {
			e.err = err
			return
		}
		signer, err := ssh.ParsePrivateKey(data)
		if err == nil {
			e.signer, e.pub = signer, signer.PublicKey()
			return
		}
		var missing *ssh.PassphraseMissingError
		if !errors.As(err, &missing) {
			e.err = fmt.Errorf("private key %s: %w", e.file, err)
			return
		}
		e.raw, e.pub = data, missing.PublicKey
		if e.pub == nil {
			if pubData, err := os.ReadFile(e.file + ".pub"); err == nil {
				if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData); err == nil {
					e.pub = pub
				}
			}
		}
	})
	return e.err
}

// decrypt returns the key's signer, asking for the passphrase the first
// time. pause stops the caller's connect timeout while it waits: for a
// person to type, or for another dial that is asking for the same key.
func (k *keyring) decrypt(e *keyEntry, pause func() func()) (ssh.Signer, error) {
	e.mu.Lock()
	if e.signer != nil || e.decErr != nil {
		defer e.mu.Unlock()
		return e.signer, e.decErr
	}
	e.mu.Unlock()
	if pause != nil {
		defer pause()()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.signer != nil || e.decErr != nil {
		return e.signer, e.decErr
	}
	var pass []byte
	if v, ok := os.LookupEnv(PassphraseEnv); ok {
		pass = []byte(v)
	} else if k.passphrase != nil {
		k.ask.Lock()
		p, err := k.passphrase(e.file)
		k.ask.Unlock()
		if err != nil {
			e.decErr = fmt.Errorf("private key %s is encrypted and no passphrase was given: %w", e.file, err)
			return nil, e.decErr
		}
		pass = p
	} else {
		e.decErr = fmt.Errorf("private key %s is encrypted: set %s, or run on a terminal to be asked", e.file, PassphraseEnv)
		return nil, e.decErr
	}
	signer, err := ssh.ParsePrivateKeyWithPassphrase(e.raw, pass)
	clear(pass)
	switch {
	case errors.Is(err, x509.IncorrectPasswordError):
		e.decErr = fmt.Errorf("private key %s: wrong passphrase", e.file)
	case err != nil:
		e.decErr = fmt.Errorf("private key %s: %w", e.file, err)
	default:
		e.signer = signer
		e.raw = nil
	}
	return e.signer, e.decErr
}

// lazySigner is an encrypted key offered by its public half: the server is
// asked whether it would accept the key before anything is signed, so the
// passphrase is asked for only when a host accepts the key.
type lazySigner struct {
	ring  *keyring
	e     *keyEntry
	pause func() func()
	fail  *error // where a decryption failure is kept for the error report
}

var _ ssh.MultiAlgorithmSigner = (*lazySigner)(nil)

func (s *lazySigner) PublicKey() ssh.PublicKey { return s.e.pub }

func (s *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	signer, err := s.ring.decrypt(s.e, s.pause)
	if err != nil {
		*s.fail = err
		return nil, err
	}
	return signer.Sign(rand, data)
}

func (s *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	signer, err := s.ring.decrypt(s.e, s.pause)
	if err != nil {
		*s.fail = err
		return nil, err
	}
	as, ok := signer.(ssh.AlgorithmSigner)
	if !ok {
		return nil, fmt.Errorf("private key %s cannot sign with %s", s.e.file, algorithm)
	}
	return as.SignWithAlgorithm(rand, data, algorithm)
}

func (s *lazySigner) Algorithms() []string {
	if s.e.pub.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{s.e.pub.Type()}
}

// auth is the credentials of one login: the signers to offer and a record
// of what was offered, for the error when all are refused.
type auth struct {
	signers []ssh.Signer
	tried   []string
	signErr error // a key the host accepted but that could not sign
	agent   net.Conn
}

func (a *auth) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

// newAuth gathers the signers for e: its key files in order, each replaced
// by the agent's copy when the agent holds it (no passphrase needed), then
// the agent's other keys unless IdentitiesOnly. OpenSSH offers them in the
// same order. A key file
// named by the inventory or --private-key that cannot be read is an error;
// others are skipped, as OpenSSH does.
func (d *Dialer) newAuth(e endpoint, pause func() func()) (*auth, error) {
	a := &auth{}
	var agentSigners []ssh.Signer
	if sock := d.agentSocket(); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			d.log.Warn().Err(err).Str("socket", sock).Msg("ssh-agent is not reachable; trying key files only")
		} else {
			a.agent = c
			agentSigners, err = agent.NewClient(c).Signers()
			if err != nil {
				d.log.Warn().Err(err).Msg("ssh-agent did not list its keys; trying key files only")
				agentSigners = nil
			}
		}
	}
	inAgent := func(pub ssh.PublicKey) ssh.Signer {
		for _, s := range agentSigners {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return s
			}
		}
		return nil
	}
	offered := map[string]bool{}
	add := func(s ssh.Signer, what string) {
		k := string(s.PublicKey().Marshal())
		if offered[k] {
			return
		}
		offered[k] = true
		a.signers = append(a.signers, s)
		a.tried = append(a.tried, fmt.Sprintf("%s (%s %s)", what, s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey())))
	}
	for _, id := range e.keys {
		entry := d.keys.entry(id.path)
		if err := entry.load(); err != nil {
			if !id.required && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			a.close()
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("private key %s: no such file", id.path)
			}
			return nil, err
		}
		if entry.pub == nil {
			// Encrypted in a format that hides the public key: decrypt now.
			signer, err := d.keys.decrypt(entry, pause)
			if err != nil {
				a.close()
				return nil, err
			}
			add(signer, "key file "+id.path)
			continue
		}
		if s := inAgent(entry.pub); s != nil {
			add(s, "key file "+id.path+" from the agent")
			continue
		}
		entry.mu.Lock()
		signer := entry.signer
		entry.mu.Unlock()
		if signer == nil {
			signer = &lazySigner{ring: &d.keys, e: entry, pause: pause, fail: &a.signErr}
		}
		add(signer, "key file "+id.path)
	}
	if !e.identitiesOnly {
		for _, s := range agentSigners {
			add(s, "agent key")
		}
	}
	return a, nil
}

func (d *Dialer) agentSocket() string {
	if d.opts.DisableAgent {
		return ""
	}
	if d.opts.AgentSocket != "" {
		return d.opts.AgentSocket
	}
	return os.Getenv("SSH_AUTH_SOCK")
}
