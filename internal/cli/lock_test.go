package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/runlock"
	"github.com/runbookhq/runbook/internal/spec"
)

// TestLockStoreOverTLS opens the etcd lock store a runbook names with its TLS
// files (relative to the runbook's folder) against a real etcd that requires
// client certificates, and checks that a wrong CA is refused, not trusted.
func TestLockStoreOverTLS(t *testing.T) {
	dir := t.TempDir()
	good, err := etcdlab.NewPKI(filepath.Join(dir, "pki"), etcdlab.FirstAddr)
	if err != nil {
		t.Fatal(err)
	}
	other, err := etcdlab.NewPKI(filepath.Join(dir, "other"), etcdlab.FirstAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := etcdlab.New(t, etcdlab.Options{Version: "3.6.16", Members: 1, TLS: good.ServerTLS()})
	book := filepath.Join(dir, "rb.yml")
	if err := os.WriteFile(book, []byte("runbook: r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rel := func(p string) string {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	lock := func(ca string) *spec.Lock {
		return &spec.Lock{Etcd: &spec.EtcdLock{Endpoints: c.Endpoints(), Prefix: "/tls/", TTL: 5 * time.Second,
			CAFile: rel(ca), CertFile: rel(good.ClientCert), KeyFile: rel(good.ClientKey), DialTimeout: 2 * time.Second}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	s, err := openLockStore(lock(good.CAFile), book, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.Acquire(ctx, []string{runlock.HostKey("m1")}, runlock.Me("run-tls", "r"))
	if err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	if _, err := s.Acquire(ctx, []string{runlock.HostKey("m1")}, runlock.Me("run-2", "r")); !errors.Is(err, runlock.ErrHeld) {
		t.Errorf("second run over TLS: err = %v, want refused", err)
	}
	h.Release()

	bad, err := openLockStore(lock(other.CAFile), book, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Acquire(ctx, []string{runlock.HostKey("m1")}, runlock.Me("run-bad", "r"))
	if err == nil {
		t.Fatal("a cluster whose certificate the CA did not sign was trusted")
	}
	if !strings.Contains(err.Error(), "grant a lease") {
		t.Errorf("err = %v", err)
	}
	// exec adds why, which etcd's client does not say.
	if why := etcdUnreachable(lock(other.CAFile), book); !strings.Contains(why, "certificate signed by unknown authority") {
		t.Errorf("etcdUnreachable = %q, want the TLS failure", why)
	}
	if why := etcdUnreachable(lock(good.CAFile), book); why != "" {
		t.Errorf("etcdUnreachable with the right CA = %q", why)
	}
}
