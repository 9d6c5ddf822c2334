package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures are made by the real ansible-vault: scripts/make-vault-fixtures.sh.
const fixtures = "../testdata/vault"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func secret(t *testing.T, id, passFile string) Secret {
	t.Helper()
	return Secret{ID: id, Password: bytes.TrimSpace(readFixture(t, passFile)), Source: passFile}
}

// body returns the inner parts (salt, hmac, ciphertext, as hex) of an envelope,
// and rebuild puts them back, so that cases can change one of them.
func body(t *testing.T, data []byte) (header string, parts []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	inner, err := hex.DecodeString(strings.Join(lines[1:], ""))
	if err != nil {
		t.Fatal(err)
	}
	return lines[0], strings.SplitN(string(inner), "\n", 3)
}

func rebuild(header string, parts []string) []byte {
	return []byte(header + "\n" + hex.EncodeToString([]byte(strings.Join(parts, "\n"))) + "\n")
}

func TestDecrypt(t *testing.T) {
	plain := readFixture(t, "plain.txt")
	v11 := readFixture(t, "v11.vault")
	v12 := readFixture(t, "v12.vault")
	def := secret(t, DefaultID, "default.pass")
	prod := secret(t, "prod", "prod.pass")
	wrong := secret(t, DefaultID, "wrong.pass")

	h11, p11 := body(t, v11)
	flip := func(hexs string) string { // changes the first byte of a hex string
		b, _ := hex.DecodeString(hexs)
		b[0] ^= 1
		return hex.EncodeToString(b)
	}

	cases := []struct {
		name    string
		data    []byte
		secrets []Secret
		want    []byte
		err     string // substring of the error; "" for success
		format  bool   // the error is a *FormatError
		decrypt bool   // the error is a *DecryptError
	}{
		{name: "1.1", data: v11, secrets: []Secret{def}, want: plain},
		{name: "1.2 with its id", data: v12, secrets: []Secret{def, prod}, want: plain},
		// As in Ansible, the id only orders the tries: a password of another id that fits is used.
		{name: "1.2 with a password of another id", data: v12, secrets: []Secret{{ID: "other", Password: prod.Password}}, want: plain},
		{name: "1.1 after a wrong password", data: v11, secrets: []Secret{wrong, def}, want: plain},
		{name: "inline indentation", data: []byte(strings.ReplaceAll("  "+string(v11), "\n", "\n  ")), secrets: []Secret{def}, want: plain},
		{name: "no password", data: v11, err: "no vault password was given"},
		{name: "wrong password", data: v11, secrets: []Secret{wrong}, err: "no vault password given decrypts it: the password is wrong", decrypt: true},
		{name: "wrong password for an id", data: v12, secrets: []Secret{def}, err: `it names vault id "prod"; tried "default"`, decrypt: true},
		{name: "tampered HMAC", data: rebuild(h11, []string{p11[0], flip(p11[1]), p11[2]}), secrets: []Secret{def}, err: "HMAC does not match", decrypt: true},
		{name: "tampered ciphertext", data: rebuild(h11, []string{p11[0], p11[1], flip(p11[2])}), secrets: []Secret{def}, err: "HMAC does not match", decrypt: true},
		{name: "tampered salt", data: rebuild(h11, []string{flip(p11[0]), p11[1], p11[2]}), secrets: []Secret{def}, err: "HMAC does not match", decrypt: true},
		{name: "truncated body", data: v11[:len(v11)/2], secrets: []Secret{def}, err: "not valid vault data", format: true},
		{name: "truncated ciphertext", data: rebuild(h11, []string{p11[0], p11[1], p11[2][:len(p11[2])-2]}), secrets: []Secret{def}, err: "not a whole number of 16-byte blocks", format: true},
		{name: "truncated HMAC", data: rebuild(h11, []string{p11[0], p11[1][:40], p11[2]}), secrets: []Secret{def}, err: "the HMAC is 20 bytes, want 32", format: true},
		{name: "header only", data: []byte("$ANSIBLE_VAULT;1.1;AES256\n"), secrets: []Secret{def}, err: "nothing after the header", format: true},
		{name: "bad hex", data: []byte("$ANSIBLE_VAULT;1.1;AES256\n3131zz\n"), secrets: []Secret{def}, err: "the body is not hex", format: true},
		{name: "bad inner hex", data: rebuild(h11, []string{p11[0], p11[1], "zz" + p11[2]}), secrets: []Secret{def}, err: "the ciphertext is not hex", format: true},
		{name: "unknown version", data: []byte(strings.Replace(string(v11), "1.1", "2.0", 1)), secrets: []Secret{def}, err: `unknown format version "2.0"`, format: true},
		{name: "unknown cipher", data: []byte(strings.Replace(string(v11), "AES256", "AES", 1)), secrets: []Secret{def}, err: `unknown cipher "AES"`, format: true},
		{name: "1.2 without id", data: []byte(strings.Replace(string(v12), ";prod", "", 1)), secrets: []Secret{prod}, err: "format 1.2 needs a vault id", format: true},
		{name: "no header", data: []byte("vault: 1\n"), secrets: []Secret{def}, err: "does not start with $ANSIBLE_VAULT", format: true},
		{name: "short header", data: []byte("$ANSIBLE_VAULT;1.1\nabcd\n"), secrets: []Secret{def}, err: "no version and cipher", format: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decrypt(c.data, c.secrets)
			if c.err == "" {
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(got, c.want) {
					t.Fatalf("Decrypt = %q, want %q", got, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decrypt = %q, want an error with %q", got, c.err)
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %q does not contain %q", err, c.err)
			}
			var fe *FormatError
			if errors.As(err, &fe) != c.format {
				t.Errorf("error %q: FormatError is %v, want %v", err, !c.format, c.format)
			}
			var de *DecryptError
			if errors.As(err, &de) != c.decrypt {
				t.Errorf("error %q: DecryptError is %v, want %v", err, !c.decrypt, c.decrypt)
			}
			for _, s := range c.secrets {
				if strings.Contains(err.Error(), string(s.Password)) {
					t.Errorf("error %q holds the password", err)
				}
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	env, err := Parse(readFixture(t, "v12.vault"))
	if err != nil {
		t.Fatal(err)
	}
	if env.Version != "1.2" || env.Cipher != "AES256" || env.ID != "prod" {
		t.Errorf("Parse = %s %s %q, want 1.2 AES256 \"prod\"", env.Version, env.Cipher, env.ID)
	}
}

// TestRoundTripWithAnsibleVault encrypts a fresh random value with the real
// ansible-vault and decrypts it, so that a change of Ansible's format shows up
// here and not in a user's run.
func TestRoundTripWithAnsibleVault(t *testing.T) {
	tool, err := exec.LookPath("ansible-vault")
	if err != nil {
		t.Skip("ansible-vault is not on PATH (scripts/deps.sh installs Debian's ansible-core): skipping the round trip with the real tool")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ansible.cfg")
	pass := filepath.Join(dir, "pass")
	rnd := make([]byte, 24)
	rand.Read(rnd)
	password := "pw-" + hex.EncodeToString(rnd[:8])
	value := "value-" + hex.EncodeToString(rnd[8:]) + "\nsecond line ünïcode\n"
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pass, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{DefaultID, "staging"} {
		t.Run(id, func(t *testing.T) {
			in := filepath.Join(dir, id+".txt")
			out := filepath.Join(dir, id+".vault")
			if err := os.WriteFile(in, []byte(value), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tool, "encrypt", "--vault-id", id+"@"+pass, "--output", out, in)
			cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "HOME="+dir)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ansible-vault encrypt: %v\n%s", err, b)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			wantVersion, wantID := "1.1", ""
			if id != DefaultID {
				wantVersion, wantID = "1.2", id
			}
			if env.Version != wantVersion || env.ID != wantID {
				t.Errorf("envelope %s id %q, want %s id %q", env.Version, env.ID, wantVersion, wantID)
			}
			got, err := env.Decrypt([]Secret{{ID: id, Password: []byte(password)}})
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if string(got) != value {
				t.Fatalf("Decrypt = %q, want %q", got, value)
			}
			if _, err := env.Decrypt([]Secret{{ID: id, Password: []byte(password + "x")}}); err == nil {
				t.Fatal("Decrypt with a wrong password succeeded")
			}

			// And the other way: ansible-vault decrypts what Encrypt writes.
			ours, err := Encrypt([]byte(value), Secret{ID: id, Password: []byte(password)}, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(out, ours, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd = exec.Command(tool, "decrypt", "--vault-id", id+"@"+pass, "--output", "-", out)
			cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "HOME="+dir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("ansible-vault decrypt of Encrypt's output: %v\n%s", err, stderr.Bytes())
			}
			if stdout.String() != value {
				t.Fatalf("ansible-vault decrypt = %q, want %q", stdout.String(), value)
			}
		})
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	for _, s := range []Secret{{ID: DefaultID, Password: []byte("pw")}, {ID: "prod", Password: []byte("pw2")}} {
		for _, plain := range []string{"", "x", "exactly sixteen!", strings.Repeat("long ", 100)} {
			data, err := Encrypt([]byte(plain), s, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(data), "\n") {
				if len(l) > 80 {
					t.Fatalf("line of %d characters, want at most 80", len(l))
				}
			}
			got, err := Decrypt(data, []Secret{s})
			if err != nil || string(got) != plain {
				t.Fatalf("Decrypt(Encrypt(%q)) = %q, %v", plain, got, err)
			}
		}
	}
}
