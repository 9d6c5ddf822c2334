package inventory

import "testing"

// TestMarkSecret: values marked while loading are the inventory's secrets,
// every leaf of them; nothing else is.
func TestMarkSecret(t *testing.T) {
	inv := &Inventory{}
	if inv.Secrets().Len() != 0 {
		t.Fatal("a new inventory has secrets")
	}
	inv.MarkSecret("vault-pass-1")
	inv.MarkSecret(map[string]any{"db": []any{"db-pass-22", 123456}})
	got := inv.Secrets().Redact("vault-pass-1 db-pass-22 123456 etcd-1")
	if want := "<redacted> <redacted> <redacted> etcd-1"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
}
