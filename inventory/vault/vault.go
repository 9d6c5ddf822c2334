// Package vault decrypts Ansible Vault data: files encrypted whole with
// ansible-vault encrypt and the !vault values of YAML files, in the formats
// $ANSIBLE_VAULT;1.1;AES256 and $ANSIBLE_VAULT;1.2;AES256;VAULT_ID.
//
// The format, as Ansible writes it: after the header line, the hex of three
// lines "hex(salt)\nhex(hmac)\nhex(ciphertext)", wrapped at 80 columns. The
// password and the salt give 80 bytes by PBKDF2-HMAC-SHA256 with 10000
// iterations: a 32-byte AES-256 key, a 32-byte HMAC-SHA256 key and a 16-byte
// counter block for AES-CTR. The HMAC covers the ciphertext; the plaintext is
// PKCS#7-padded to the AES block size.
package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Header starts every piece of vault data.
const Header = "$ANSIBLE_VAULT"

// DefaultID is the vault id of a password given without a label, and of data
// encrypted without one (format 1.1), as in Ansible.
const DefaultID = "default"

const (
	iterations = 10000
	keyLen     = 32
	ivLen      = aes.BlockSize
)

// IsEncrypted reports whether data is vault data (it starts with the header).
func IsEncrypted(data []byte) bool { return bytes.HasPrefix(data, []byte(Header)) }

// Secret is one vault password and the vault id it is for.
type Secret struct {
	// ID is the vault id (the label of --vault-id label@source); DefaultID when none.
	ID string
	// Password is the password itself. It never appears in an error.
	Password []byte
	// Source says where the password came from, for messages ("--vault-password-file pw").
	Source string
}

// Envelope is parsed vault data, not yet decrypted.
type Envelope struct {
	Version string // "1.1" or "1.2"
	Cipher  string // "AES256", the only one Ansible has
	// ID is the vault id the data names (format 1.2), or "" (format 1.1). It is
	// not authenticated: like Ansible, it only says which password to try first.
	ID string

	salt, mac, ciphertext []byte
}

// FormatError is vault data that cannot be read at all: no password can help.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "not valid vault data: " + e.Reason }

func formatErr(format string, args ...any) error {
	return &FormatError{Reason: fmt.Sprintf(format, args...)}
}

// ErrNoSecret is returned when vault data is met and no password was given.
var ErrNoSecret = errors.New("it is vault-encrypted and no vault password was given")

// DecryptError is vault data that none of the passwords given decrypts: the
// HMAC did not match for any, because of a wrong password or changed data.
type DecryptError struct {
	// ID is the vault id the data names ("" for format 1.1).
	ID string
	// Tried are the vault ids of the passwords tried, in order.
	Tried []string
}

func (e *DecryptError) Error() string {
	var b strings.Builder
	b.WriteString("no vault password given decrypts it")
	if e.ID != "" {
		fmt.Fprintf(&b, " (it names vault id %q; tried %s)", e.ID, strings.Join(quoteAll(e.Tried), ", "))
	} else if len(e.Tried) > 1 {
		fmt.Fprintf(&b, " (tried %s)", strings.Join(quoteAll(e.Tried), ", "))
	}
	b.WriteString(": the password is wrong, or the data was changed since it was encrypted (its HMAC does not match)")
	return b.String()
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Parse reads the envelope of vault data: the header line and the hex body.
func Parse(data []byte) (*Envelope, error) {
	text := strings.TrimSpace(string(data))
	if !strings.HasPrefix(text, Header) {
		return nil, formatErr("it does not start with %s", Header)
	}
	lines := strings.Split(text, "\n")
	fields := strings.Split(strings.TrimSpace(lines[0]), ";")
	if len(fields) < 3 {
		return nil, formatErr("the header %q has no version and cipher (want %s;1.1;AES256)", lines[0], Header)
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	env := &Envelope{Version: fields[1], Cipher: fields[2]}
	switch env.Version {
	case "1.1":
		if len(fields) > 3 {
			return nil, formatErr("format 1.1 has no vault id, but the header names %q", fields[3])
		}
	case "1.2":
		if len(fields) != 4 || fields[3] == "" {
			return nil, formatErr("format 1.2 needs a vault id after the cipher (%s;1.2;AES256;ID)", Header)
		}
		env.ID = fields[3]
	default:
		return nil, formatErr("unknown format version %q (known: 1.1, 1.2)", env.Version)
	}
	if env.Cipher != "AES256" {
		return nil, formatErr("unknown cipher %q (Ansible Vault uses AES256)", env.Cipher)
	}
	var body strings.Builder
	for _, l := range lines[1:] {
		body.WriteString(strings.TrimSpace(l))
	}
	if body.Len() == 0 {
		return nil, formatErr("nothing after the header")
	}
	inner, err := hex.DecodeString(body.String())
	if err != nil {
		return nil, formatErr("the body is not hex: %v", err)
	}
	parts := strings.SplitN(string(inner), "\n", 3)
	if len(parts) != 3 {
		return nil, formatErr("the body does not hold salt, HMAC and ciphertext (truncated?)")
	}
	names := [3]string{"salt", "HMAC", "ciphertext"}
	var raw [3][]byte
	for i, p := range parts {
		if raw[i], err = hex.DecodeString(p); err != nil {
			return nil, formatErr("the %s is not hex: %v", names[i], err)
		}
		if len(raw[i]) == 0 {
			return nil, formatErr("the %s is empty", names[i])
		}
	}
	env.salt, env.mac, env.ciphertext = raw[0], raw[1], raw[2]
	if len(env.mac) != sha256.Size {
		return nil, formatErr("the HMAC is %d bytes, want %d (truncated?)", len(env.mac), sha256.Size)
	}
	if len(env.ciphertext)%aes.BlockSize != 0 {
		return nil, formatErr("the ciphertext is %d bytes, not a whole number of %d-byte blocks (truncated?)", len(env.ciphertext), aes.BlockSize)
	}
	return env, nil
}

// Decrypt parses data and decrypts it with the first of secrets that fits.
func Decrypt(data []byte, secrets []Secret) ([]byte, error) {
	env, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return env.Decrypt(secrets)
}

// Decrypt tries the secrets as Ansible does: those whose vault id is the one
// the data names first, then all the others in the order given. The HMAC is
// checked, in constant time, before anything is decrypted.
func (e *Envelope) Decrypt(secrets []Secret) ([]byte, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	order := make([]Secret, 0, len(secrets))
	for _, s := range secrets {
		if e.ID != "" && s.ID == e.ID {
			order = append(order, s)
		}
	}
	for _, s := range secrets {
		if e.ID == "" || s.ID != e.ID {
			order = append(order, s)
		}
	}
	var tried []string
	for _, s := range order {
		if !contains(tried, s.ID) {
			tried = append(tried, s.ID)
		}
		plain, ok, err := e.open(s.Password)
		if err != nil {
			return nil, err
		}
		if ok {
			return plain, nil
		}
	}
	return nil, &DecryptError{ID: e.ID, Tried: tried}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// open decrypts with one password; ok is false when the HMAC does not match.
func (e *Envelope) open(password []byte) (plain []byte, ok bool, err error) {
	km, err := pbkdf2.Key(sha256.New, string(password), e.salt, iterations, 2*keyLen+ivLen)
	if err != nil {
		return nil, false, err
	}
	aesKey, macKey, iv := km[:keyLen], km[keyLen:2*keyLen], km[2*keyLen:]
	m := hmac.New(sha256.New, macKey)
	m.Write(e.ciphertext)
	if !hmac.Equal(m.Sum(nil), e.mac) {
		return nil, false, nil
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, false, err
	}
	padded := make([]byte, len(e.ciphertext))
	cipher.NewCTR(block, iv).XORKeyStream(padded, e.ciphertext)
	plain, err = unpad(padded)
	if err != nil {
		return nil, false, err
	}
	return plain, true, nil
}

// unpad removes PKCS#7 padding. With the HMAC verified, bad padding means the
// data was made by a broken encrypter, not by a wrong password.
func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, formatErr("the ciphertext is empty")
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, formatErr("the decrypted data has invalid padding")
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, formatErr("the decrypted data has invalid padding")
		}
	}
	return b[:len(b)-n], nil
}

// Encrypt encrypts plaintext with the secret as ansible-vault encrypt does:
// format 1.1, or 1.2 when the secret's id is not the default; the envelope is
// wrapped at 80 columns and ends with a newline. The salt is 32 bytes from rnd.
func Encrypt(plaintext []byte, s Secret, rnd io.Reader) ([]byte, error) {
	salt := make([]byte, 32)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, err
	}
	km, err := pbkdf2.Key(sha256.New, string(s.Password), salt, iterations, 2*keyLen+ivLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(km[:keyLen])
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte(nil), plaintext...), bytes.Repeat([]byte{byte(n)}, n)...)
	ct := make([]byte, len(padded))
	cipher.NewCTR(block, km[2*keyLen:]).XORKeyStream(ct, padded)
	m := hmac.New(sha256.New, km[keyLen:2*keyLen])
	m.Write(ct)
	inner := hex.EncodeToString(salt) + "\n" + hex.EncodeToString(m.Sum(nil)) + "\n" + hex.EncodeToString(ct)
	body := hex.EncodeToString([]byte(inner))

	var b strings.Builder
	b.WriteString(Header + ";1.1;AES256")
	if s.ID != "" && s.ID != DefaultID {
		b.Reset()
		b.WriteString(Header + ";1.2;AES256;" + s.ID)
	}
	for i := 0; i < len(body); i += 80 {
		b.WriteByte('\n')
		b.WriteString(body[i:min(i+80, len(body))])
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}
