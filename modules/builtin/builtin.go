// Package builtin registers every module that ships with runbook; a program
// imports it for its side effect, as Caddy's modules/standard is imported.
package builtin

import (
	_ "github.com/runbookhq/runbook/modules/analysis"
	_ "github.com/runbookhq/runbook/modules/assert"
	_ "github.com/runbookhq/runbook/modules/assertmetric"
	_ "github.com/runbookhq/runbook/modules/check"
	_ "github.com/runbookhq/runbook/modules/command"
	_ "github.com/runbookhq/runbook/modules/copy"
	_ "github.com/runbookhq/runbook/modules/debug"
	_ "github.com/runbookhq/runbook/modules/etcdfacts"
	_ "github.com/runbookhq/runbook/modules/etcdmove"
	_ "github.com/runbookhq/runbook/modules/fail"
	_ "github.com/runbookhq/runbook/modules/file"
	_ "github.com/runbookhq/runbook/modules/lineinfile"
	_ "github.com/runbookhq/runbook/modules/pause"
	_ "github.com/runbookhq/runbook/modules/redisfacts"
	_ "github.com/runbookhq/runbook/modules/service"
	_ "github.com/runbookhq/runbook/modules/setfact"
	_ "github.com/runbookhq/runbook/modules/shell"
	_ "github.com/runbookhq/runbook/modules/snapshot"
	_ "github.com/runbookhq/runbook/modules/swap"
	_ "github.com/runbookhq/runbook/modules/systemdfacts"
	_ "github.com/runbookhq/runbook/modules/template"
	_ "github.com/runbookhq/runbook/modules/wait"
)
