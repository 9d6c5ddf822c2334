package inventory

import "github.com/runbookhq/runbook/internal/redact"

// MarkSecret records v as secret: a value the inventory read from an
// encrypted source (an Ansible Vault file or !vault scalar), decrypted. Every
// string and number inside v (deeply, as redact.Set.AddValue walks it) is then
// kept out of the journal, the terminal and error messages of any run that
// uses this inventory. Call it while loading, for each decrypted value.
func (inv *Inventory) MarkSecret(v any) { inv.secrets.AddValue(v) }

// Secrets returns the values marked with MarkSecret. The CLI merges them into
// the run's set of secrets, with the -e values.
func (inv *Inventory) Secrets() *redact.Set { return &inv.secrets }
