package etcdctl

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/etcdlab"
)

// clients returns the client of each endpoint of a gathered cluster, by URL.
func clients(cl *Cluster) map[string]*Client {
	out := map[string]*Client{}
	for _, e := range cl.Endpoints {
		out[e.URL] = e.Client
	}
	return out
}

// A reading lends the clients of the last one while their connections are
// up; a member stopped and started between two readings gets a new client,
// is read as down while it is, and as itself once it is back.
func TestPoolAcrossRestart(t *testing.T) {
	c := shared(t)
	cfg := labConfig(c)
	leader, err := c.Leader(testCtx(t))
	must(t, err)
	name := "m3"
	if leader == name {
		name = "m2"
	}
	m := c.Member(name)
	t.Cleanup(func() {
		if !m.Running() {
			if err := c.Restart(testCtx(t), name); err != nil {
				t.Fatal(err)
			}
		}
	})

	cl, err := Gather(testCtx(t), cfg, GatherOptions{Health: true})
	must(t, err)
	first := clients(cl)
	cl.Close()
	cl, err = Gather(testCtx(t), cfg, GatherOptions{Health: true})
	must(t, err)
	for u, cli := range clients(cl) {
		if first[u] != cli {
			t.Errorf("%s: a new client, though its connection was up", u)
		}
	}
	if !Healthy(cl) {
		t.Errorf("the lab is not healthy: %+v", NewReport(cl))
	}
	cl.Close()

	must(t, c.Stop(name))
	cl, err = Gather(testCtx(t), cfg, GatherOptions{Health: true})
	must(t, err)
	down := clients(cl)[m.ClientURL]
	mm := cl.MemberByName(name)
	if mm == nil || mm.Status() != nil || Healthy(cl) {
		t.Errorf("with %s stopped: member %+v, healthy %v", name, mm, Healthy(cl))
	}
	// Refused at once, as by a new client: not a request left to wait for
	// its deadline on a connection that is gone.
	if e := endpointOf(cl, m.ClientURL); e == nil || e.StatusErr == nil || !strings.Contains(e.StatusErr.Error(), "connection refused") {
		t.Errorf("%s stopped: status error %v, want connection refused", name, e.StatusErr)
	}
	if down == first[m.ClientURL] {
		t.Errorf("the stopped member's client was lent again")
	}
	cl.Close()

	must(t, c.Restart(testCtx(t), name))
	cl, err = Gather(testCtx(t), cfg, GatherOptions{Health: true})
	must(t, err)
	defer cl.Close()
	mm = cl.MemberByName(name)
	if mm == nil || mm.Status() == nil || mm.Status().Header.MemberId != mm.ID {
		t.Fatalf("after %s's restart: member %+v", name, mm)
	}
	if e := mm.Endpoint; e.StatusErr != nil || e.ListErr != nil || e.VersionsErr != nil || e.HealthErr != nil || e.Versions.Server != labVersion {
		t.Errorf("after %s's restart: %+v", name, e)
	}
}

func endpointOf(cl *Cluster, u string) *Endpoint {
	for _, e := range cl.Endpoints {
		if e.URL == u {
			return e
		}
	}
	return nil
}

// A client nobody uses is closed after the pool's idle time.
func TestPoolIdle(t *testing.T) {
	c := shared(t)
	p := &clientPool{idle: time.Millisecond, clients: map[poolKey]*pooled{}}
	cfg := labConfig(c)
	cli, err := p.borrow(cfg, cfg.Endpoints[0])
	must(t, err)
	if _, err := cli.Status(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	p.giveBack(cli)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		n := len(p.clients)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle client is still in the pool")
		}
	}
	if _, err := cli.Status(testCtx(t)); err == nil {
		t.Error("the expired client still answers: it was not closed")
	}
}

// Clients are lent only for the same settings: another CA, client
// certificate or password gets a client of its own.
func TestPoolKey(t *testing.T) {
	dir := t.TempDir()
	a, err := etcdlab.NewPKI(filepath.Join(dir, "a"), "127.0.0.1")
	must(t, err)
	b, err := etcdlab.NewPKI(filepath.Join(dir, "b"), "127.0.0.1")
	must(t, err)
	ep := "https://127.0.0.1:2379"
	key := func(s Settings, vars map[string]any) poolKey {
		t.Helper()
		s.Endpoints = []string{ep}
		cfg, err := Resolve(s, Env{Vars: vars})
		must(t, err)
		k, ok := cfg.poolKey(ep)
		if !ok {
			t.Fatalf("settings %+v: no pool key", s)
		}
		return k
	}
	base := Settings{CAFile: a.CAFile, CertFile: a.ClientCert, KeyFile: a.ClientKey}
	if key(base, nil) != key(base, nil) {
		t.Error("the same files give different keys")
	}
	for name, s := range map[string]Settings{
		"another CA":          {CAFile: b.CAFile, CertFile: a.ClientCert, KeyFile: a.ClientKey},
		"another certificate": {CAFile: a.CAFile, CertFile: b.ClientCert, KeyFile: b.ClientKey},
		"no certificate":      {CAFile: a.CAFile},
		"system CAs":          {},
		"another timeout":     {CAFile: a.CAFile, CertFile: a.ClientCert, KeyFile: a.ClientKey, Timeout: time.Second},
	} {
		if key(s, nil) == key(base, nil) {
			t.Errorf("%s: the same key", name)
		}
	}
	user := func(pw string) map[string]any { return map[string]any{VarUser: "root", VarPassword: pw} }
	if key(base, user("one")) == key(base, user("two")) || key(base, user("one")) == key(base, nil) {
		t.Error("another password: the same key")
	}
	// TLS not read from files by Resolve cannot be told apart: never pooled.
	cfg, err := Resolve(Settings{Endpoints: []string{ep}, CAFile: a.CAFile}, Env{})
	must(t, err)
	cfg.tlsID = ""
	if _, ok := cfg.poolKey(ep); ok {
		t.Error("TLS of unknown origin is pooled")
	}
}

// Readings at once (hosts of a batch, a step's guard and its module) share
// the pool's clients: each reading is whole, and one client per endpoint
// stays.
func TestPoolConcurrentReadings(t *testing.T) {
	c := shared(t)
	cfg := labConfig(c)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 4 {
				cl, err := Gather(testCtx(t), cfg, GatherOptions{Health: true})
				if err != nil {
					t.Error(err)
					return
				}
				if !Healthy(cl) || cl.Leader() == nil {
					t.Errorf("a reading among others: %+v", NewReport(cl))
				}
				cl.Close()
			}
		})
	}
	wg.Wait()
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for _, u := range cfg.Endpoints {
		k, _ := cfg.poolKey(u)
		if e := pool.clients[k]; e == nil || e.users != 0 {
			t.Errorf("%s: pooled %+v, want one client nobody uses", u, e)
		}
	}
}
