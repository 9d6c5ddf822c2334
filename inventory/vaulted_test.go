package inventory

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/inventory/vault"
)

// The vault fixtures are made by the real ansible-vault (scripts/make-vault-fixtures.sh).
const vaultDir = "testdata/vault"

// The plaintexts in the fixtures.
var vaultPlain = map[string]string{
	"api_token":          "tok-4f1b-inline-host",  // inline in hosts.yml, 1.1
	"vault_db_password":  "s3cr3t-db-pass-7781",   // group_vars/all/vault.yml, whole, 1.1
	"etcd_root_password": "root-pw-inline-5521",   // inline in group_vars/etcd.yml, 1.2 prod
	"etcd_peer_secret":   "peer-secret-one-9090",  // host_vars/etcd-1.yml, whole, 1.2 prod
	"extra_secret":       "extra-secret-3141",     // inline in extra.yml, 1.1
	"vault_api_keys.0":   "key-one-1111",          // group_vars/all/vault.yml
	"vault_api_keys.1":   "key-two-2222",          //
	"plain_extra":        "",                      // not a secret
	"db_user":            "",                      // not a secret
	"unused":             "runbook-test-vault-pw", // never a value: the passwords must not leak either
}

var envelopeRe = regexp.MustCompile(`"(\$ANSIBLE_VAULT;[^\\]*)[^"]*"`)

func vaultSecret(t testing.TB, id, file string) vault.Secret {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vaultDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return vault.Secret{ID: id, Password: bytes.TrimSpace(b), Source: file}
}

func diagText(ds diag.Diags, src diag.Sources) string {
	var b bytes.Buffer
	_ = diag.WriteText(&b, ds, src)
	return b.String()
}

func TestLoadVaulted(t *testing.T) {
	def := vaultSecret(t, vault.DefaultID, "default.pass")
	prod := vaultSecret(t, "prod", "prod.pass")
	inv, ds := LoadWith(filepath.Join(vaultDir, "inv/hosts.yml"), Options{Vault: []vault.Secret{def, prod}})
	if ds.HasErrors() {
		t.Fatalf("LoadWith:\n%s", diagText(ds, inv.Sources()))
	}
	e1, _ := inv.Host("etcd-1")
	e2, _ := inv.Host("etcd-2")
	checks := []struct {
		h    *Host
		name string
		want any
	}{
		{e1, "etcd_peer_secret", vaultPlain["etcd_peer_secret"]},
		{e1, "etcd_root_password", vaultPlain["etcd_root_password"]},
		{e1, "vault_db_password", vaultPlain["vault_db_password"]},
		{e1, "vault_api_keys", []any{vaultPlain["vault_api_keys.0"], vaultPlain["vault_api_keys.1"]}},
		{e1, "db_user", "runbook"},
		{e2, "api_token", vaultPlain["api_token"]},
		{e2, "etcd_root_password", vaultPlain["etcd_root_password"]},
	}
	for _, c := range checks {
		got, _ := c.h.Var(c.name)
		if !slices.Equal([]string{showValue(got)}, []string{showValue(c.want)}) {
			t.Errorf("%s: %s = %s, want %s", c.h.Name, c.name, showValue(got), showValue(c.want))
		}
	}
	// A variable from a file encrypted whole points at its decrypted text, whose
	// source is never printed.
	if p, _ := e1.VarPos("etcd_peer_secret"); p.File != filepath.Join(vaultDir, "inv/host_vars/etcd-1.yml")+" (decrypted)" || p.Line != 1 {
		t.Errorf("VarPos(etcd_peer_secret) = %v", p)
	}
	if p, _ := e2.VarPos("api_token"); p.File != filepath.Join(vaultDir, "inv/hosts.yml") || p.Line != 9 {
		t.Errorf("VarPos(api_token) = %v", p)
	}

	want := []string{"key-one-1111", "key-two-2222", "peer-secret-one-9090", "root-pw-inline-5521", "s3cr3t-db-pass-7781", "tok-4f1b-inline-host"}
	if got := inv.VaultedValues(); !slices.Equal(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}

	// Nothing that prints variables shows a decrypted value.
	var list, graph bytes.Buffer
	if err := inv.WriteList(&list); err != nil {
		t.Fatal(err)
	}
	if err := inv.WriteGraphVars(&graph, ""); err != nil {
		t.Fatal(err)
	}
	h1, _ := inv.HostVars("etcd-1")
	h2, _ := inv.HostVars("etcd-2")
	for name, out := range map[string]string{"WriteList": list.String(), "WriteGraphVars": graph.String(), "HostVars": string(h1) + string(h2)} {
		for _, s := range vaultPlain {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("%s prints the secret %q:\n%s", name, s, out)
			}
		}
	}
	// The envelopes change each time the fixtures are made: the golden file has them cut.
	golden(t, filepath.Join(vaultDir, "hostvars-etcd-1.golden"), envelopeRe.ReplaceAll(h1, []byte(`"$1..."`)))
	// Inline values are shown as ansible-inventory shows them: the envelope.
	if !strings.Contains(string(h2), `"api_token": {`+"\n"+`        "__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n`) {
		t.Errorf("HostVars(etcd-2) does not show api_token as its envelope:\n%s", h2)
	}
}

func TestLoadVaultedErrors(t *testing.T) {
	def := vaultSecret(t, vault.DefaultID, "default.pass")
	prod := vaultSecret(t, "prod", "prod.pass")
	wrong := vaultSecret(t, vault.DefaultID, "wrong.pass")
	inv := filepath.Join(vaultDir, "inv/hosts.yml")
	hostVars := filepath.Join(vaultDir, "inv/host_vars/etcd-1.yml")
	allVault := filepath.Join(vaultDir, "inv/group_vars/all/vault.yml")
	etcdVars := filepath.Join(vaultDir, "inv/group_vars/etcd.yml")
	cases := []struct {
		name    string
		secrets []vault.Secret
		want    []string // each line must be among the error lines
	}{
		{"no password", nil, []string{
			allVault + ":1:1: the file is vault-encrypted and no vault password was given; " + vaultHint,
			etcdVars + ":2:21: the !vault value is vault-encrypted and no vault password was given; " + vaultHint,
			hostVars + ":1:1: the file is vault-encrypted and no vault password was given; " + vaultHint,
			inv + ":9:22: the !vault value is vault-encrypted and no vault password was given; " + vaultHint,
		}},
		{"wrong password", []vault.Secret{wrong}, []string{
			allVault + `:1:1: cannot decrypt the file: no vault password given decrypts it: the password is wrong, or the data was changed since it was encrypted (its HMAC does not match); check the password given, or the vault id it is for`,
			etcdVars + `:2:21: cannot decrypt the !vault value: no vault password given decrypts it (it names vault id "prod"; tried "default"): the password is wrong, or the data was changed since it was encrypted (its HMAC does not match); check the password given, or the vault id it is for`,
			hostVars + `:1:1: cannot decrypt the file: no vault password given decrypts it (it names vault id "prod"; tried "default")`,
			inv + ":9:22: cannot decrypt the !vault value: no vault password given decrypts it: the password is wrong, or the data was changed since it was encrypted (its HMAC does not match); check the password given, or the vault id it is for",
		}},
		{"the prod password missing", []vault.Secret{def}, []string{
			etcdVars + `:2:21: cannot decrypt the !vault value: no vault password given decrypts it (it names vault id "prod"; tried "default")`,
			hostVars + `:1:1: cannot decrypt the file: no vault password given decrypts it (it names vault id "prod"; tried "default")`,
		}},
		{"the default password missing", []vault.Secret{prod}, []string{
			allVault + `:1:1: cannot decrypt the file: no vault password given decrypts it: the password is wrong`,
			inv + `:9:22: cannot decrypt the !vault value: no vault password given decrypts it: the password is wrong`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, ds := LoadWith(inv, Options{Vault: c.secrets})
			out := diagText(ds, i.Sources())
			if !ds.HasErrors() {
				t.Fatalf("LoadWith succeeded; want errors")
			}
			var lines []string
			for _, d := range ds.Errors() {
				lines = append(lines, d.Error())
			}
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no error line starts with\n  %s\ngot:\n%s", w, out)
				}
			}
			if len(lines) != len(c.want) {
				t.Errorf("%d errors, want %d:\n%s", len(lines), len(c.want), out)
			}
			for _, s := range append(c.secrets, def, prod) {
				if strings.Contains(out, string(s.Password)) {
					t.Errorf("the errors show the password %q:\n%s", s.Password, out)
				}
			}
		})
	}
}

// TestVaultedDiagsRedacted checks that a message quoting a bad value does not
// print it when it was decrypted, and that a file encrypted whole has no
// source line printed.
func TestVaultedDiagsRedacted(t *testing.T) {
	dir := t.TempDir()
	s := vault.Secret{ID: vault.DefaultID, Password: []byte("pw-for-this-test")}
	enc := func(plain string) string {
		b, err := vault.Encrypt([]byte(plain), s, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	inline := "all:\n  hosts:\n    h1:\n      ansible_port: !vault |\n        " +
		strings.ReplaceAll(strings.TrimSpace(enc("port-secret-2222")), "\n", "\n        ") + "\n"
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("hosts.yml", inline)
	write("host_vars/h1.yml", enc("ansible_user: user-secret-3333\nansible_become: [not-a-bool-4444]\n"))
	i, ds := LoadWith(filepath.Join(dir, "hosts.yml"), Options{Vault: []vault.Secret{s}})
	out := diagText(ds, i.Sources())
	if !ds.HasErrors() {
		t.Fatalf("no errors; want the bad ansible_port and ansible_become")
	}
	for _, secret := range []string{"port-secret-2222", "user-secret-3333", "not-a-bool-4444"} {
		if strings.Contains(out, secret) {
			t.Errorf("the errors show the secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "h1.yml (decrypted):2:") {
		t.Errorf("the error in the decrypted file does not name its line:\n%s", out)
	}
	t.Log(out)
}

func TestExtraVarsVaulted(t *testing.T) {
	def := vaultSecret(t, vault.DefaultID, "default.pass")
	wd, _ := os.Getwd()
	vars, secrets, err := ParseExtraVarsWith([]string{"@" + filepath.Join(vaultDir, "extra.yml")}, wd, Options{Vault: []vault.Secret{def}})
	if err != nil {
		t.Fatal(err)
	}
	if vars["extra_secret"] != vaultPlain["extra_secret"] || vars["plain_extra"] != "visible" {
		t.Errorf("vars = %v", vars)
	}
	if !slices.Equal(secrets, []string{vaultPlain["extra_secret"]}) {
		t.Errorf("secrets = %q", secrets)
	}

	// A file encrypted whole: every value is a secret.
	dir := t.TempDir()
	enc, err := vault.Encrypt([]byte("a: one-secret\nb: [two-secret, 3]\n"), def, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.yml"), enc, 0o600); err != nil {
		t.Fatal(err)
	}
	_, secrets, err = ParseExtraVarsWith([]string{"@x.yml"}, dir, Options{Vault: []vault.Secret{def}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(secrets, []string{"3", "one-secret", "two-secret"}) {
		t.Errorf("secrets = %q", secrets)
	}

	_, _, err = ParseExtraVarsWith([]string{"@" + filepath.Join(vaultDir, "extra.yml")}, wd, Options{})
	if err == nil || !strings.Contains(err.Error(), "extra.yml:2:15: the !vault value is vault-encrypted and no vault password was given; give the password with --vault-password-file") {
		t.Errorf("without a password: %v", err)
	}
}
