// Package systemdfacts provides the `systemd` facts: the state of the host's
// systemd units as it is now (active, sub-state, main pid, since when).
package systemdfacts

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

func init() {
	modules.RegisterFacts(modules.Facts{
		Name:   "systemd",
		Doc:    Doc,
		Sample: Facts{},
		Gather: func(ctx context.Context, h *modules.Host) (any, error) { return Gather(ctx, h) },
	})
}

// Doc is what `runbook doc` shows for the facts.
const Doc = `The host's systemd units as they are when the step's expressions run, read
afresh for each step (and each attempt of a step with until) that reads
systemd, with one "systemctl show" on the host (with the step's become).

The units are the host var systemd_units (a list of names), else the var
systemd_unit (one name). A unit systemd does not know has load "not-found".

  systemd.unit        the first unit (systemd_unit): {name, load, active, sub, main_pid, since, enabled}
  systemd.units       map of unit name to the same
    .active           ActiveState: active, inactive, failed, activating, deactivating, reloading
    .sub              SubState: running, exited, dead, ...
    .main_pid         MainPID (0 when none)
    .since            when it entered its active state, RFC 3339 ("" when never)
    .enabled          UnitFileState: enabled, disabled, static, ...

Example: until: 'systemd.unit.active == "active" && systemd.unit.main_pid > 0'.`

// Facts is what expressions see as `systemd`.
type Facts struct {
	Unit  Unit            `expr:"unit" json:"unit"`
	Units map[string]Unit `expr:"units" json:"units"`
}

// Unit is one unit's state.
type Unit struct {
	Name    string `expr:"name" json:"name"`
	Load    string `expr:"load" json:"load"`
	Active  string `expr:"active" json:"active"`
	Sub     string `expr:"sub" json:"sub"`
	MainPID int    `expr:"main_pid" json:"main_pid"`
	Since   string `expr:"since" json:"since"`
	Enabled string `expr:"enabled" json:"enabled"`
}

var properties = []string{"Id", "LoadState", "ActiveState", "SubState", "MainPID", "ActiveEnterTimestamp", "UnitFileState"}

// Units returns the units a host's vars name.
func Units(vars map[string]any) ([]string, error) {
	switch v := vars["systemd_units"].(type) {
	case nil:
	case []any:
		var out []string
		for _, u := range v {
			s, ok := u.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("var systemd_units must be a list of unit names, got an item %v", u)
			}
			out = append(out, s)
		}
		if len(out) > 0 {
			return out, nil
		}
	default:
		return nil, fmt.Errorf("var systemd_units must be a list of unit names, got %T", v)
	}
	if u, ok := vars["systemd_unit"].(string); ok && u != "" {
		return []string{u}, nil
	}
	return nil, fmt.Errorf("set var systemd_unit (a unit name) or systemd_units (a list) for the systemd facts")
}

// Gather reads the facts for host h.
func Gather(ctx context.Context, h *modules.Host) (Facts, error) {
	units, err := Units(h.Vars)
	if err != nil {
		return Facts{}, fmt.Errorf("systemd facts: %w", err)
	}
	argv := append([]string{"systemctl", "show", "--property=" + strings.Join(properties, ",")}, units...)
	out, err := h.Conn.Run(ctx, conn.Cmd{Argv: argv, Become: h.Become, BecomeUser: h.BecomeUser})
	if err != nil {
		return Facts{}, fmt.Errorf("systemd facts on %s: %w", h.Name, err)
	}
	return Parse(units, string(out.Stdout))
}

// Parse reads the output of systemctl show for units: one block of
// Key=Value lines per unit, in order, separated by a blank line.
func Parse(units []string, text string) (Facts, error) {
	f := Facts{Units: map[string]Unit{}}
	var blocks []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				blocks = append(blocks, cur)
				cur = map[string]string{}
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = v
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	if len(blocks) != len(units) {
		return Facts{}, fmt.Errorf("systemd facts: systemctl show gave %d units for %d asked", len(blocks), len(units))
	}
	for i, b := range blocks {
		u := Unit{Name: units[i], Load: b["LoadState"], Active: b["ActiveState"], Sub: b["SubState"], Enabled: b["UnitFileState"]}
		u.MainPID, _ = strconv.Atoi(b["MainPID"])
		u.Since = since(b["ActiveEnterTimestamp"])
		f.Units[u.Name] = u
		if i == 0 {
			f.Unit = u
		}
	}
	return f, nil
}

// since turns systemd's "Mon 2026-12-07 15:04:05 UTC" into RFC 3339.
func since(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "n/a" {
		return ""
	}
	for _, layout := range []string{"Mon 2006-01-02 15:04:05 MST", "Mon 2006-01-02 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return s
}
