package etcdmove

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
	"github.com/runbookhq/runbook/modules/etcdarg"
	"github.com/runbookhq/runbook/modules/internal/modtest"
)

var lab = &etcdlab.Shared{Options: etcdlab.Options{Version: "3.6.16"}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Module
		wantField string
		wantMsg   string
	}{
		{"nothing", Module{}, "", ""},
		{"to", Module{To: "etcd-3"}, "", ""},
		{"version", Module{Version: "3.7.3", Prefer: "upgraded"}, "", ""},
		{"templated version", Module{Version: "{{ etcd_version }}"}, "", ""},
		{"any", Module{Prefer: "any"}, "", ""},

		{"unknown prefer", Module{Prefer: "newest"}, "prefer", `"newest" is not a preference; use upgraded or any`},
		{"to and prefer", Module{To: "a", Prefer: "any"}, "prefer", "to names it; remove one of them"},
		{"to and version", Module{To: "a", Version: "3.7.3"}, "version", "to names it"},
		{"version with any", Module{Version: "3.7.3", Prefer: "any"}, "version", "only used with prefer: upgraded"},
		{"bad version", Module{Version: "3.7"}, "version", "not an etcd version"},
		{"bad endpoint", Module{Conn: etcdarg.Conn{Endpoints: arg.StringList{"10.0.0.1:2379"}}}, "endpoints", "not a client URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modtest.Validate(t, &tt.m, tt.wantField, tt.wantMsg)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// host is member name of the lab as an inventory host, with the members'
// URLs in var etcd_endpoints.
func host(c *etcdlab.Cluster, name string) *modules.Host {
	eps := make([]any, 0, len(c.Members))
	for _, m := range c.Endpoints() {
		eps = append(eps, m)
	}
	return &modules.Host{Name: name, Log: zerolog.Nop(),
		Vars: map[string]any{"etcd_url": c.Member(name).ClientURL, "etcd_endpoints": eps}}
}

func leader(t *testing.T, c *etcdlab.Cluster) string {
	t.Helper()
	l, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMovesAwayFromTheLeader(t *testing.T) {
	c := lab.Get(t)
	from := leader(t, c)
	res, err := (&Module{}).Run(testCtx(t), host(c, from))
	if err != nil {
		t.Fatal(err)
	}
	to, _ := res.Data["to"].(string)
	if !res.Changed || res.Data["from"] != from || to == from || to == "" || res.Data["moved"] != true || res.Data["took_ms"].(int64) < 0 {
		t.Fatalf("result = %+v", res)
	}
	// MoveLeader returned once every member reported the new leader.
	for _, m := range c.Members {
		cli, err := c.Client(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cli.Status(testCtx(t), m.ClientURL)
		cli.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader != c.Member(to).ID {
			t.Errorf("member %s sees leader %x, want %s", m.Name, st.Leader, to)
		}
	}
}

func TestNothingToDoOnAFollower(t *testing.T) {
	c := lab.Get(t)
	l := leader(t, c)
	follower := "m1"
	if l == follower {
		follower = "m2"
	}
	res, err := (&Module{}).Run(testCtx(t), host(c, follower))
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Data["moved"] != false || res.Data["from"] != l || res.Data["to"] != l {
		t.Errorf("result = %+v, want nothing done", res)
	}
	if got := leader(t, c); got != l {
		t.Errorf("leader moved from %s to %s", l, got)
	}
}

func TestCheckSaysWhoWouldLead(t *testing.T) {
	c := lab.Get(t)
	l := leader(t, c)
	h := host(c, l)
	res, err := (&Module{}).Check(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if to := res.Data["to"]; !res.Changed || res.Data["moved"] != false || to == l || c.Member(to.(string)) == nil {
		t.Errorf("result = %+v", res)
	}
	if got := leader(t, c); got != l {
		t.Errorf("--check moved the leader from %s to %s", l, got)
	}
}

func TestMovesToTheNamedMember(t *testing.T) {
	c := lab.Get(t)
	l := leader(t, c)
	to := "m3"
	if l == to {
		to = "m2"
	}
	res, err := (&Module{To: to}).Run(testCtx(t), host(c, l))
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["to"] != to || leader(t, c) != to {
		t.Errorf("result = %+v, leader %s; want %s", res.Data, leader(t, c), to)
	}
	_, err = (&Module{To: "m9"}).Run(testCtx(t), host(c, to))
	if err == nil || !strings.Contains(err.Error(), `to: no member is called "m9"; the members are [m1, m2, m3]`) {
		t.Errorf("Run to an unknown member = %v", err)
	}
}

func TestNotAMember(t *testing.T) {
	c := lab.Get(t)
	h := host(c, "m1")
	h.Name, h.Vars["etcd_url"] = "web-1", "http://127.0.0.99:2379"
	_, err := (&Module{}).Run(testCtx(t), h)
	if err == nil || !strings.Contains(err.Error(), "host web-1 is not a member") {
		t.Errorf("Run on a host that is no member = %v", err)
	}
}

// TestPrefersUpgraded runs last: it leaves one member on 3.7.3, as in the
// middle of a rolling upgrade, and the leader must go to that member.
func TestPrefersUpgraded(t *testing.T) {
	c := lab.Get(t)
	l := leader(t, c)
	var upgraded string
	for _, m := range c.Members {
		if m.Name != l {
			upgraded = m.Name // the last follower, so not simply the first by name
		}
	}
	if err := c.Upgrade(testCtx(t), upgraded, "3.7.3"); err != nil {
		t.Fatal(err)
	}
	if l = leader(t, c); l == upgraded {
		// It took leadership on its own: hand it back to a 3.6 member first.
		other := "m1"
		if upgraded == other {
			other = "m2"
		}
		if _, err := (&Module{To: other}).Run(testCtx(t), host(c, l)); err != nil {
			t.Fatal(err)
		}
		l = other
	}
	res, err := (&Module{Version: "3.7.3"}).Run(testCtx(t), host(c, l))
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["to"] != upgraded {
		t.Errorf("leadership went to %v, want the upgraded %s", res.Data["to"], upgraded)
	}
}
