package service

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/svcmgr"
)

// helperEnv makes the test binary act as the daemon of the pidfile tests, a
// real process whose behaviour on signals is known.
const helperEnv = "RUNBOOK_MODSERVICE_HELPER"

// listenEnv, when set, makes the daemon listen there, for readiness probes.
const listenEnv = "RUNBOOK_MODSERVICE_LISTEN"

// helperLife bounds every helper process, should a test fail to stop it.
const helperLife = 2 * time.Minute

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		// Watching a started daemon for a second is right for etcd and slow
		// for a test binary that fails at once if it fails at all.
		svcmgr.StartSettle = 100 * time.Millisecond
		os.Exit(m.Run())
	case "serve", "ignore-term":
		sigs := make(chan os.Signal, 1)
		if mode == "serve" {
			signal.Notify(sigs, syscall.SIGTERM)
		} else {
			signal.Ignore(syscall.SIGTERM)
		}
		if addr := os.Getenv(listenEnv); addr != "" {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
		fmt.Println("ready:", mode)
		select {
		case s := <-sigs:
			fmt.Println("got", s)
			os.Exit(0)
		case <-time.After(helperLife):
			os.Exit(3)
		}
	case "lock-linger":
		lockLinger()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

// lockEnv names the file the lock-linger daemon keeps locked.
const lockEnv = "RUNBOOK_MODSERVICE_LOCK"

// lockLinger plays etcd's shutdown: its data under a flock(2) lock, as
// bbolt keeps it; on TERM it releases the lock at once, then lingers
// (bounded), as etcd waits for its peers' connections.
func lockLinger() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	f, err := os.Open(os.Getenv(lockEnv))
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lock:", err)
		os.Exit(2)
	}
	fmt.Println("ready: lock-linger")
	select {
	case <-sigs:
	case <-time.After(helperLife):
		os.Exit(3)
	}
	f.Close()
	fmt.Println("got TERM, unlocked")
	time.Sleep(30 * time.Second)
	os.Exit(3)
}
