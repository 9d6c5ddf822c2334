package vault

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitID(t *testing.T) {
	cases := []struct{ arg, label, source string }{
		{"prod@pw.txt", "prod", "pw.txt"},
		{"pw.txt", DefaultID, "pw.txt"},
		{"prod@prompt", "prod", "prompt"},
		{"a@b@c", "a", "b@c"},
	}
	for _, c := range cases {
		label, source := SplitID(c.arg)
		if label != c.label || source != c.source {
			t.Errorf("SplitID(%q) = %q, %q, want %q, %q", c.arg, label, source, c.label, c.source)
		}
	}
}

func TestFromFile(t *testing.T) {
	t.Setenv("RUNBOOK_SSH_PASSPHRASE", "pp-secret")
	t.Setenv("RUNBOOK_X_TOKEN", "tok-secret")
	t.Setenv("VISIBLE_1", "seen")
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, id, file, content string
		mode                    os.FileMode
		want, err               string
	}{
		{name: "file", id: DefaultID, file: "pw", content: "s3cret\n", mode: 0o600, want: "s3cret"},
		{name: "spaces around", id: DefaultID, file: "pw2", content: "  s3cret pass \r\n\n", mode: 0o600, want: "s3cret pass"},
		{name: "empty", id: DefaultID, file: "empty", content: " \n", mode: 0o600, err: "the vault password is empty"},
		{name: "missing", id: DefaultID, file: "nope", err: "--vault-password-file " + filepath.Join(dir, "nope") + ": cannot read the vault password file: no such file or directory"},
		{name: "encrypted", id: DefaultID, file: "enc", content: "$ANSIBLE_VAULT;1.1;AES256\n3131\n", mode: 0o600, err: "is itself vault-encrypted"},
		{name: "script", id: "prod", file: "pw.sh", content: "#!/bin/sh\necho '  script pw'\n", mode: 0o700, want: "  script pw"},
		{name: "script fails", id: DefaultID, file: "fail.sh", content: "#!/bin/sh\nexit 3\n", mode: 0o700, err: "the vault password script failed (exit status 3)"},
		{name: "client script", id: "prod", file: "keyring-client.sh", content: "#!/bin/sh\n[ \"$1\" = --vault-id ] && echo \"pw-for-$2\"\n", mode: 0o700, want: "pw-for-prod"},
		// The controller's own secrets stay with the controller; the rest
		// of the environment reaches the script.
		{name: "script environment", id: DefaultID, file: "env.sh", content: "#!/bin/sh\necho \"pw-${RUNBOOK_SSH_PASSPHRASE}-${RUNBOOK_X_TOKEN}-$VISIBLE_1\"\n", mode: 0o700, want: "pw---seen"},
		{name: "client script without the id", id: "prod", file: "none-client", content: "#!/bin/sh\necho no such id >&2\nexit 2\n", mode: 0o700, err: `has no password for vault id "prod": no such id`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if c.content != "" {
				path = write(c.file, c.content, c.mode)
			}
			var stderr bytes.Buffer
			s, err := FromFile(context.Background(), c.id, path, nil, &stderr)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("FromFile = %q, %v; want an error with %q", s.Password, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Password) != c.want || s.ID != c.id {
				t.Errorf("FromFile = %q (id %q), want %q (id %q)", s.Password, s.ID, c.want, c.id)
			}
		})
	}
}
