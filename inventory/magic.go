package inventory

import "path/filepath"

// MagicVars are the variables Ansible sets on every host from where the
// inventory was read: inventory_file, the file that declared the host, and
// inventory_dir, its folder, both absolute. They rank below every variable
// an inventory, a runbook or -e sets. They let an inventory name paths next
// to itself ('{{ inventory_dir }}/../pki/ca.pem') without -e, wherever
// runbook is started from.
func (h *Host) MagicVars() map[string]any {
	if h.Pos.File == "" {
		return nil
	}
	file, err := filepath.Abs(h.Pos.File)
	if err != nil {
		return nil
	}
	return map[string]any{"inventory_file": file, "inventory_dir": filepath.Dir(file)}
}
