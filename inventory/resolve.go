package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/runbookhq/runbook/internal/diag"
)

// Resolve finds the inventory that -i name means: name itself when that path
// exists; else, when name is a bare name (no path separator), the runbook
// repository's inventory/NAME.yml, inventory/NAME.yaml, inventory/NAME/ (a
// directory) or inventory/NAME (an INI file), in that order. The error lists
// every path tried.
func Resolve(name, runbookDir string) (string, error) {
	if name == "" {
		return "", errors.New("empty inventory name")
	}
	tried := []string{name}
	if _, err := os.Stat(name); err == nil {
		return name, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("inventory %s: %s", name, describeErr(err))
	}
	if strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("inventory %s: no such file or directory", name)
	}
	dir := filepath.Join(runbookDir, "inventory")
	for _, c := range []struct{ path, label string }{
		{filepath.Join(dir, name+".yml"), ""},
		{filepath.Join(dir, name+".yaml"), ""},
		{filepath.Join(dir, name), " (a directory or an INI file)"},
	} {
		tried = append(tried, c.path+c.label)
		st, err := os.Stat(c.path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("inventory %s: %s: %s", name, c.path, describeErr(err))
			}
			continue
		}
		if st.IsDir() || st.Mode().IsRegular() {
			return c.path, nil
		}
	}
	msg := fmt.Sprintf("inventory %q not found; tried %s", name, strings.Join(tried, ", "))
	if hint := diag.Suggest(name, inventoryNames(dir)); hint != "" {
		msg += "; " + hint
	}
	return "", errors.New(msg)
}

// inventoryNames lists the names -i accepts from an inventory/ folder.
func inventoryNames(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || e.Name() == "group_vars" || e.Name() == "host_vars" {
			continue
		}
		if ext := filepath.Ext(n); ext == ".yml" || ext == ".yaml" {
			n = strings.TrimSuffix(n, ext)
		}
		names = append(names, n)
	}
	return names
}
