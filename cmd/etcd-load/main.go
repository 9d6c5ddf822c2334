// Command etcd-load writes to etcd at a steady rate during a change, then
// reads every write back and reports failures, losses, gaps and latency.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/runbookhq/runbook/internal/etcdload"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	interrupts := make(chan struct{})
	go func() {
		for range sigs {
			interrupts <- struct{}{}
		}
	}()
	os.Exit(etcdload.Main(os.Args[1:], os.Stdout, os.Stderr, interrupts))
}
