package etcdctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runbookhq/runbook/internal/backoff"
	"github.com/runbookhq/runbook/internal/etcdlab"
)

// put writes n keys through a balanced client of the lab, so that hashes and
// snapshots have data to cover.
func put(t *testing.T, c *etcdlab.Cluster, n int) {
	t.Helper()
	cli, err := c.Client("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i := range n {
		if _, err := cli.Put(testCtx(t), fmt.Sprintf("/test/%s/%d", t.Name(), i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckHealthyCluster(t *testing.T) {
	c := shared(t)
	put(t, c, 50)
	caught := 1000
	cc := &Rules{
		ExpectMembers:  Names("m1", "m2", "m3"),
		Versions:       &VersionRules{SameMinor: true, Min: "3.6.11", Target: "3.7.3"},
		CaughtUp:       &caught,
		Consistency:    true,
		ClusterVersion: "3.6",
		StorageVersion: "3.6",
	}
	r, err := Check(testCtx(t), labConfig(c), cc)
	if err != nil {
		t.Fatalf("Check on a healthy lab: %v", err)
	}
	leader, err := c.Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Leader != leader || r.ClusterID != ID(c.ClusterID) || r.ClusterVersion != "3.6.0" || r.Revision < 51 {
		t.Errorf("report: leader %q cluster %s version %s revision %d; want leader %s cluster %s, 3.6.0, at least 51",
			r.Leader, r.ClusterID, r.ClusterVersion, r.Revision, leader, ID(c.ClusterID))
	}
	if len(r.Members) != 3 {
		t.Fatalf("members = %+v", r.Members)
	}
	for i, m := range r.Members {
		lm := c.Members[i]
		if m.Name != lm.Name || m.ID != ID(lm.ID) || m.Endpoint != lm.ClientURL || !m.Answered ||
			m.Version != labVersion || m.StorageVersion != "3.6.0" || m.Leader != (m.Name == leader) ||
			m.RaftIndex == 0 || m.AppliedIndex == 0 || m.DBSize == 0 || m.Learner {
			t.Errorf("member %d = %+v", i, m)
		}
	}
	if h := r.Hash; h == nil || !h.Equal || len(h.Members) != 3 || h.Members[0].Hash != h.Members[1].Hash || h.Members[1].Hash != h.Members[2].Hash {
		t.Errorf("hash = %+v, want three equal hashes", h)
	}
	if len(r.Lag) != 1 || r.Lag[0] < 0 || r.Lag[0] > 1000 {
		t.Errorf("lag = %v, want one reading within 1000 entries", r.Lag)
	}
	if d := r.Data(); d["leader"] != leader || len(d["members"].([]any)) != 3 {
		t.Errorf("data = %v", d)
	}
}

func TestCheckVersionFloor(t *testing.T) {
	c := shared(t)
	r, err := Check(testCtx(t), labConfig(c), &Rules{Versions: &VersionRules{Min: "3.6.20"}})
	if err == nil {
		t.Fatal("Check with a floor above the running version passed")
	}
	for _, m := range c.Members {
		want := fmt.Sprintf("member %s (%s) runs 3.6.16, below the minimum 3.6.20", m.Name, m.ClientURL)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if r == nil || len(r.Problems) != 3 || len(r.Members) != 3 {
		t.Errorf("report = %+v, want what was seen and the three problems", r)
	}
}

func TestCheckMemberStopped(t *testing.T) {
	c := shared(t)
	m2 := c.Member("m2")
	if err := c.Stop("m2"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !m2.Running() {
			if err := c.Restart(testCtx(t), "m2"); err != nil {
				t.Fatal(err)
			}
		}
	})
	start := time.Now()
	r, err := Check(testCtx(t), labConfig(c), &Rules{})
	if err == nil {
		t.Fatal("Check passed with m2 stopped")
	}
	want := "member m2 (" + m2.ClientURL + ") does not answer: status: dial tcp " + strings.TrimPrefix(m2.ClientURL, "http://") + ": connect: connection refused"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Check took %s; a refused connection should not wait for the request timeout", took)
	}
	var seen bool
	for _, m := range r.Members {
		if m.Name == "m2" {
			seen = true
			if m.Answered || m.Version != "" {
				t.Errorf("m2 = %+v, want it reported as not answering", m)
			}
		}
	}
	if !seen || r.Leader == "" {
		t.Errorf("report = %+v, want m2 listed and the others' leader", r)
	}
	if err := c.Restart(testCtx(t), "m2"); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(testCtx(t), labConfig(c), &Rules{}); err != nil {
		t.Errorf("Check after m2's restart: %v", err)
	}
}

func TestCheckUnknownEndpoint(t *testing.T) {
	c := shared(t)
	cfg := labConfig(c)
	cfg.Endpoints = append(cfg.Endpoints, "http://127.0.0.29:1")
	_, err := Check(testCtx(t), cfg, &Rules{})
	if err == nil || !strings.Contains(err.Error(), "endpoint http://127.0.0.29:1 does not answer") {
		t.Errorf("Check = %v, want the endpoint that does not answer named", err)
	}
}

func TestConsistencyAfterCompaction(t *testing.T) {
	c := shared(t)
	put(t, c, 20)
	cli, err := c.Client("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Put(testCtx(t), "/test/compact", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(testCtx(t), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// A hash at the compacted revision itself is the one etcd stored before
	// compacting (its compact revision is the previous one): write past it,
	// and wait for every member to apply that write, since the check hashes
	// at the lowest revision it sees.
	put(t, c, 1)
	waitRevision(t, c, resp.Header.Revision+1)
	cl, err := Gather(testCtx(t), labConfig(c), GatherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h, err := Consistency(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Equal || h.Revision < resp.Header.Revision || len(h.Members) != 3 {
		t.Errorf("hash report = %+v", h)
	}
	for _, m := range h.Members {
		if m.CompactRevision != resp.Header.Revision {
			t.Errorf("member %s compact revision %d, want %d", m.Name, m.CompactRevision, resp.Header.Revision)
		}
	}
}

func TestSnapshot(t *testing.T) {
	c := shared(t)
	put(t, c, 100)
	cl, err := Gather(testCtx(t), labConfig(c), GatherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leader := cl.Leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	dest := filepath.Join(t.TempDir(), "backups", "nested", "snap.db")
	f, err := leader.Endpoint.Client.Snapshot(testCtx(t), dest, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != fi.Size() || f.Size%512 != 32 || len(f.SHA256) != 64 || f.StorageVersion != "3.6.0" || f.Replaced {
		t.Errorf("snapshot = %+v, file size %d", f, fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(dest)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	if _, err := os.Stat(dest + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part is left behind: %v", dest, err)
	}
	again, err := leader.Endpoint.Client.Snapshot(testCtx(t), dest, time.Minute)
	if err != nil || !again.Replaced {
		t.Errorf("second snapshot to the same file = %+v, %v; want it replaced", again, err)
	}
	data, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(t.TempDir(), "tampered.db")
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(tampered, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifySnapshot(tampered); err == nil || !strings.Contains(err.Error(), "is damaged: its last 32 bytes say sha256") {
		t.Errorf("VerifySnapshot of a tampered trailer = %v", err)
	}
}

func TestMoveLeader(t *testing.T) {
	c := shared(t)
	cl, err := Gather(testCtx(t), labConfig(c), GatherOptions{Health: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	from := cl.Leader()
	to, err := Transferee(cl, "", PreferAny, "")
	if err != nil {
		t.Fatal(err)
	}
	if to == from || to == nil {
		t.Fatalf("transferee %v, leader %v", to, from)
	}
	if _, err := Transferee(cl, from.Name, "", ""); err == nil || !strings.Contains(err.Error(), "it is the leader") {
		t.Errorf("Transferee to the leader itself = %v", err)
	}
	took, err := MoveLeader(testCtx(t), cl, to, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took <= 0 {
		t.Errorf("took %s", took)
	}
	for _, m := range cl.Members {
		if m.Status().Leader != to.ID {
			t.Errorf("member %s sees leader %s, want %s", m.Name, ID(m.Status().Leader), to.Name)
		}
	}
	if got, err := c.Leader(testCtx(t)); err != nil || got != to.Name {
		t.Errorf("the lab's leader is %q (%v), want %s", got, err, to.Name)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	good, err := etcdlab.NewPKI(filepath.Join(dir, "good"), etcdlab.FirstAddr)
	must(t, err)
	other, err := etcdlab.NewPKI(filepath.Join(dir, "other"), etcdlab.FirstAddr)
	must(t, err)
	c := etcdlab.New(t, etcdlab.Options{Version: labVersion, Members: 1, TLS: good.ServerTLS()})
	eps := c.Endpoints()
	if !strings.HasPrefix(eps[0], "https://") {
		t.Fatalf("endpoints %v are not https", eps)
	}
	tests := []struct {
		name    string
		conn    Settings
		wantErr string
	}{
		{"right CA and client certificate", Settings{CAFile: good.CAFile, CertFile: good.ClientCert, KeyFile: good.ClientKey}, ""},
		{"wrong CA", Settings{CAFile: other.CAFile, CertFile: good.ClientCert, KeyFile: good.ClientKey}, "certificate signed by unknown authority"},
		{"system CAs", Settings{}, "certificate signed by unknown authority"},
		{"no client certificate", Settings{CAFile: good.CAFile}, "certificate required"},
		// The server names the CAs it accepts, so the client sends no certificate.
		{"client certificate of another CA", Settings{CAFile: good.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}, "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.conn.Endpoints = eps
			cfg, err := Resolve(tt.conn, Env{})
			must(t, err)
			r, err := Check(testCtx(t), cfg, &Rules{AllowSmall: true, ClusterVersion: "3.6"})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r.Leader != "m1" {
					t.Errorf("leader = %q, want m1", r.Leader)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("a quiet connection does not hold the stop", func(t *testing.T) {
		cfg, err := Resolve(Settings{Endpoints: eps, CAFile: good.CAFile, CertFile: good.ClientCert, KeyFile: good.ClientKey}, Env{})
		must(t, err)
		quietStop(t, c, cfg, "m1")
	})
}

// quietStop opens connections as a client's GET /version does and leaves
// them unused: the client closes such a connection itself, and member name
// stops with one open. etcd's graceful stop waits for the first request of
// every client connection (over https for 5 s at most), and etcdlab kills a
// member that has not stopped within its limit, and says so.
func quietStop(t *testing.T, c *etcdlab.Cluster, cfg Config, name string) {
	t.Helper()
	m := c.Member(name)
	cl, err := cfg.Dial(m.ClientURL)
	must(t, err)
	defer cl.Close()
	tr := cl.http.Transport.(*http.Transport)
	u, err := url.Parse(m.ClientURL)
	must(t, err)
	dial := tr.DialContext
	if u.Scheme == "https" {
		dial = tr.DialTLSContext
	}
	conn, err := dial(testCtx(t), "tcp", u.Host)
	must(t, err)
	// Over TLS the client's close sends close_notify first, and the read
	// may meet the member's answer to it (EOF) before the socket closes: the
	// connection says who closed it.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if q, ok := conn.(*quietConn); !ok || !q.closedQuiet() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("reading an unused connection: %v, want it closed by the client", err)
	}
	conn.Close()

	conn, err = dial(testCtx(t), "tcp", u.Host)
	must(t, err)
	defer conn.Close()
	t.Cleanup(func() {
		if !m.Running() {
			if err := c.Restart(testCtx(t), name); err != nil {
				t.Error(err)
			}
		}
	})
	if err := c.Stop(name); err != nil {
		t.Fatalf("stopping %s with an unused connection of the version transport open: %v", name, err)
	}
}

func TestQuietConnectionDoesNotHoldStop(t *testing.T) {
	c := shared(t)
	leader, err := c.Leader(testCtx(t))
	must(t, err)
	for _, m := range c.Members {
		if m.Name != leader {
			quietStop(t, c, labConfig(c), m.Name)
			return
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A follower restarted with a backlog written while it was down is not caught
// up until it has applied that backlog: every Check that passes saw it
// within the limit of an index the cluster had committed before its restart.
func TestCaughtUpAfterBacklog(t *testing.T) {
	c := shared(t)
	ctx := testCtx(t)
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, m := range c.Members {
		if m.Name != leader {
			name = m.Name
			break
		}
	}
	lagging := c.Member(name)
	before, err := Check(ctx, labConfig(c), &Rules{})
	if err != nil {
		t.Fatal(err)
	}
	var appliedBefore uint64
	for _, m := range before.Members {
		if m.Name == name {
			appliedBefore = m.AppliedIndex
		}
	}
	// A reading of the members taken now and judged after the backlog: the
	// leader's commit index, read again then, shows the staleness.
	old, err := Gather(ctx, labConfig(c), GatherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// Restart the member however the test ends, before the next test needs it.
	restarted := make(chan error, 1)
	t.Cleanup(func() {
		select {
		case <-restarted:
		default:
			if !lagging.Running() {
				_ = c.Restart(testCtx(t), name)
			}
		}
	})
	if err := c.Stop(name); err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client(leader)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	val := strings.Repeat("v", 1000)
	for i := range 3000 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/test/backlog/%d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	st, err := cli.Status(ctx, c.Member(leader).ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	committed := st.RaftIndex
	var p problems
	caughtUp(ctx, old, 1000, &Report{}, &p)
	if want := "member " + name + " (" + lagging.ClientURL + ") has applied index "; !strings.Contains(strings.Join(p, "\n"), want) {
		t.Errorf("a reading from before a backlog of 3000 entries, judged after it: problems %q, want one containing %q", p, want)
	}
	// Nothing writes from here on: the leader's commit index stays near
	// committed, so a member declared caught up must have applied nearly all.
	limit := 10

	go func() { restarted <- c.Restart(ctx, name) }()
	var behind, down, passed int
	var b backoff.Backoff
	for ; ; time.Sleep(b.Next()) {
		r, err := Check(ctx, labConfig(c), &Rules{CaughtUp: &limit})
		if err == nil {
			passed++
			var applied uint64
			for _, m := range r.Members {
				if m.Name == name {
					applied = m.AppliedIndex
				}
			}
			if applied+uint64(limit) < committed {
				t.Fatalf("Check declared %s caught up at applied index %d; the cluster had committed %d before its restart", name, applied, committed)
			}
			break
		}
		switch {
		case strings.Contains(err.Error(), "entries behind the leader"), strings.Contains(err.Error(), "has not heard from this leader"):
			behind++
		default:
			down++
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never caught up: %v", name, err)
		}
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted with %d entries to replay: %d checks while it did not answer or had no leader, %d while behind, then caught up",
		name, committed-appliedBefore, down, behind)
}

// waitRevision waits until every member of the lab has applied revision rev:
// a follower applies a write a little after its client got the answer.
func waitRevision(t *testing.T, c *etcdlab.Cluster, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer cancel()
	for _, m := range c.Members {
		cli, err := c.Client(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		var b backoff.Backoff
		for {
			st, err := cli.Status(ctx, m.ClientURL)
			if err == nil && st.Header.Revision >= rev {
				break
			}
			select {
			case <-ctx.Done():
				cli.Close()
				t.Fatalf("member %s did not reach revision %d: %v", m.Name, rev, err)
			case <-time.After(b.Next()):
			}
		}
		cli.Close()
	}
}
