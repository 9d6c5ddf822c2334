package svcmgr

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a daemon for the pidfile tests, so
// they run a real process whose behaviour on signals is known.
const helperEnv = "RUNBOOK_SERVICE_HELPER"

// helperLife bounds every helper process, should a test fail to stop it.
const helperLife = 2 * time.Minute

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "serve":
		// Notify before saying ready, so a TERM sent after "ready" is handled.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		wd, _ := os.Getwd()
		fmt.Printf("ready in %s with %s\n", wd, os.Getenv("RUNBOOK_SERVICE_EXTRA"))
		select {
		case s := <-sigs:
			fmt.Println("got", s)
			os.Exit(0)
		case <-time.After(helperLife):
			os.Exit(3)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready, ignoring TERM")
		time.Sleep(helperLife)
		os.Exit(3)
	case "fail":
		fmt.Fprintln(os.Stderr, "fatal: bad config in /etc/etcd.conf.yml")
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}
