// Package sshtest runs SSH servers for tests: a real OpenSSH sshd on loopback
// addresses, and an in-process server whose faults a test controls.
package sshtest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Key is a generated key pair with its OpenSSH private key file.
type Key struct {
	Private crypto.Signer
	Signer  ssh.Signer
	PEM     []byte // OpenSSH private key file, unencrypted
}

// Public is the key's public half.
func (k *Key) Public() ssh.PublicKey { return k.Signer.PublicKey() }

// AuthorizedLine is the key as a line of authorized_keys or a .pub file.
func (k *Key) AuthorizedLine() string { return string(ssh.MarshalAuthorizedKey(k.Public())) }

// Write writes the private key file to dir/name (0600) and returns its path.
func (k *Key) Write(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, k.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteEncrypted writes the private key file encrypted with passphrase, in
// OpenSSH's format (which keeps the public key readable).
func (k *Key) WriteEncrypted(t testing.TB, dir, name, passphrase string) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(k.Private, "sshtest", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewEd25519 generates an ed25519 key.
func NewEd25519(t testing.TB) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newKey(t, priv)
}

// NewRSA generates a 2048-bit RSA key.
func NewRSA(t testing.TB) *Key {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return newKey(t, priv)
}

func newKey(t testing.TB, priv crypto.Signer) *Key {
	t.Helper()
	signer, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Private: priv, Signer: signer, PEM: pem.EncodeToMemory(block)}
}

// An RSA key takes a while to make, more so under -race: host keys are made
// once per test binary and shared by every server it starts.
var (
	hostKeysOnce     sync.Once
	hostEd, hostRSA  *Key
	hostKeysErr      error
	sharedClientOnce sync.Once
	sharedClient     *Key
)

func hostKeys(t testing.TB) (ed, rsaKey *Key) {
	t.Helper()
	hostKeysOnce.Do(func() {
		defer func() {
			if hostEd == nil || hostRSA == nil {
				hostKeysErr = errKeygen
			}
		}()
		hostEd = NewEd25519(t)
		hostRSA = NewRSA(t)
	})
	if hostKeysErr != nil {
		t.Fatal(hostKeysErr)
	}
	return hostEd, hostRSA
}

// ClientKey is an ed25519 client key shared by the servers of one test binary.
func ClientKey(t testing.TB) *Key {
	t.Helper()
	sharedClientOnce.Do(func() { sharedClient = NewEd25519(t) })
	if sharedClient == nil {
		t.Fatal(errKeygen)
	}
	return sharedClient
}

type keygenError struct{}

func (keygenError) Error() string { return "sshtest: generating a key failed in an earlier test" }

var errKeygen error = keygenError{}
