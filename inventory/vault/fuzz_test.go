package vault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecrypt feeds arbitrary vault data to the parser and the decrypter: it
// may fail, never panic, its errors never hold the password, and a failure is
// either a format error, a wrong password or a missing one.
func FuzzDecrypt(f *testing.F) {
	for _, name := range []string{"v11.vault", "v12.vault", "inv/group_vars/all/vault.yml"} {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Add([]byte("$ANSIBLE_VAULT;1.1;AES256\n"))
	f.Add([]byte("$ANSIBLE_VAULT;1.2;AES256;x\n0a0a\n"))
	f.Add([]byte("$ANSIBLE_VAULT;;;\n\n\n"))
	pw, err := os.ReadFile(filepath.Join(fixtures, "default.pass"))
	if err != nil {
		f.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	secrets := []Secret{{ID: DefaultID, Password: []byte(password)}, {ID: "prod", Password: []byte("prod-test-password")}}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Decrypt(data, secrets)
		if err == nil {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, password) || strings.Contains(msg, "prod-test-password") {
			t.Fatalf("error holds a password: %s", msg)
		}
		var fe *FormatError
		var de *DecryptError
		if !errors.As(err, &fe) && !errors.As(err, &de) {
			t.Fatalf("unexpected kind of error %T: %v", err, err)
		}
	})
}
