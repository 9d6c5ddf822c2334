package svcmgr

import (
	"fmt"
	"os"
	"os/exec"
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
	case "lock-linger", "lock-exit", "linger":
		lockAndLinger(mode)
	case "fail":
		fmt.Fprintln(os.Stderr, "fatal: bad config in /etc/etcd.conf.yml")
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		os.Exit(2)
	}
}

// lockEnv names the file the lock helpers lock, as a database does.
const lockEnv = "RUNBOOK_SERVICE_LOCK"

// lingerLife bounds how long a helper lingers after TERM: far beyond any
// wait of the tests, so only a SIGKILL ends it sooner.
const lingerLife = 30 * time.Second

// lockAndLinger plays a daemon that keeps its data in the file lockEnv
// names, under a flock(2) lock, the way etcd's bbolt does. On TERM:
//
//	lock-linger  releases the lock (closes its data), then lingers
//	lock-exit    exits holding the lock; a child it starts holds it a
//	             little longer, so no check can see the file unlocked
//	             while this process still runs
//	linger       never locks anything; lingers
func lockAndLinger(mode string) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	var f *os.File
	if mode != "linger" {
		var err error
		if f, err = os.Open(os.Getenv(lockEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			fmt.Fprintln(os.Stderr, "lock:", err)
			os.Exit(2)
		}
	}
	fmt.Println("ready, mode", mode)
	select {
	case <-sigs:
	case <-time.After(helperLife):
		os.Exit(3)
	}
	switch mode {
	case "lock-exit":
		holder := exec.Command("sleep", "3")
		holder.ExtraFiles = []*os.File{f}
		if err := holder.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("got TERM, exiting with the lock held")
		// A shutdown that takes a while, holding the lock throughout.
		time.Sleep(300 * time.Millisecond)
		os.Exit(0)
	case "lock-linger":
		f.Close()
		fmt.Println("got TERM, unlocked")
	}
	time.Sleep(lingerLife)
	os.Exit(3)
}
