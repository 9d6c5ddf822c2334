// Command runbook runs risky production changes safely: rolling upgrades,
// restarts and config pushes, host by host, with gates and rollback.
package main

import (
	"os"

	"github.com/runbookhq/runbook/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
