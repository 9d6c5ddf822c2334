package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/redact"
	"github.com/runbookhq/runbook/inventory/vault"
)

// Options are the inputs of LoadWith beyond the path.
type Options struct {
	// Vault are the passwords for vault-encrypted group_vars/ and host_vars/
	// files and !vault values, tried as Ansible tries them.
	Vault []vault.Secret
}

// vaultHint names the flags that give a vault password, for messages.
const vaultHint = "give the password with --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass"

// decryptedSuffix marks the positions inside a file encrypted whole: they are
// lines of its decrypted text (ansible-vault view shows it), and no source line
// is printed for them, since that would print the secret.
const decryptedSuffix = " (decrypted)"

// vaultState decrypts for one load and keeps every value it decrypted: all of
// them are secrets, to be kept out of output, events and the journal.
type vaultState struct {
	secrets []vault.Secret
	// plain maps each decrypted leaf to what output shows instead: the
	// envelope of a !vault value, as ansible-inventory shows it, or the
	// placeholder for the values of a file encrypted whole.
	plain map[string]any
}

func newVaultState(secrets []vault.Secret) *vaultState {
	return &vaultState{secrets: secrets, plain: map[string]any{}}
}

// decrypt decrypts vault data at pos; what is "the file" or "the !vault value".
func (v *vaultState) decrypt(data []byte, pos diag.Pos, what string, ds *diag.Diags) ([]byte, bool) {
	plain, err := vault.Decrypt(data, v.secrets)
	if err == nil {
		return plain, true
	}
	var fe *vault.FormatError
	switch {
	case errors.Is(err, vault.ErrNoSecret):
		ds.Add(pos, fmt.Sprintf("%s is vault-encrypted and no vault password was given", what), vaultHint)
	case errors.As(err, &fe):
		ds.Add(pos, fmt.Sprintf("cannot decrypt %s: %v", what, err), "re-create it with ansible-vault")
	default:
		ds.Add(pos, fmt.Sprintf("cannot decrypt %s: %v", what, err), "check the password given, or the vault id it is for")
	}
	return nil, false
}

// inline records the plaintext of a !vault value.
func (v *vaultState) inline(plain, envelope string) {
	v.plain[plain] = map[string]any{"__ansible_vault": envelope}
}

// whole records every leaf of a value read from a file encrypted whole: each
// string, and the text of each number (a PIN is a secret too). Booleans and
// nulls are not.
func (v *vaultState) whole(val any) {
	walkLeaves(val, func(s string) {
		if _, ok := v.plain[s]; !ok {
			v.plain[s] = redact.Placeholder
		}
	})
}

func walkLeaves(val any, f func(string)) {
	switch x := val.(type) {
	case string:
		f(x)
	case map[string]any:
		for _, e := range x {
			walkLeaves(e, f)
		}
	case []any:
		for _, e := range x {
			walkLeaves(e, f)
		}
	case nil, bool:
	default:
		if s, ok := numberText(x); ok {
			f(s)
		}
	}
}

func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return fmt.Sprint(x), true
	}
	rv := reflect.ValueOf(v)
	if rv.CanInt() || rv.CanUint() || rv.CanFloat() {
		return fmt.Sprint(v), true
	}
	return "", false
}

// VaultedValues returns every value decrypted from vault data while loading (the
// plaintext of each !vault value; each string and number of a file encrypted
// whole), sorted. They must never reach output, events or the journal: a run
// adds them to the secrets its event bus redacts.
func (inv *Inventory) VaultedValues() []string {
	if inv == nil || len(inv.vaulted) == 0 {
		return nil
	}
	out := make([]string, 0, len(inv.vaulted))
	for s := range inv.vaulted {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// masked returns a copy of val in which every decrypted value is replaced by
// what output shows instead, for the commands that print variables.
func (inv *Inventory) masked(val any) any {
	if len(inv.vaulted) == 0 {
		return val
	}
	return maskLeaves(val, inv.vaulted)
}

func maskLeaves(val any, plain map[string]any) any {
	switch x := val.(type) {
	case string:
		if m, ok := plain[x]; ok {
			return m
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = maskLeaves(e, plain)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskLeaves(e, plain)
		}
		return out
	case nil, bool:
		return x
	}
	if s, ok := numberText(val); ok {
		if m, ok := plain[s]; ok {
			return m
		}
	}
	return val
}
