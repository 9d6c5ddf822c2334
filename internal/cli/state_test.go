package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runbookhq/runbook/internal/etcdlab"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/runlock"
)

func TestParseState(t *testing.T) {
	t.Setenv(StatePasswordEnv, "")
	for _, tc := range []struct {
		in        string
		endpoints string
		prefix    string
		err       string
	}{
		{in: "", endpoints: ""},
		{in: "etcd://10.0.0.1:2379/runbook/prod", endpoints: "http://10.0.0.1:2379", prefix: "/runbook/prod/"},
		{in: "etcd://10.0.0.1:2379,10.0.0.2:2379", endpoints: "http://10.0.0.1:2379,http://10.0.0.2:2379", prefix: "/runbook/"},
		{in: "etcd+https://a.example:2379/x/?ca_file=ca.pem&wait=2m", endpoints: "https://a.example:2379", prefix: "/x/"},
		{in: "https://10.0.0.1:2379/x", err: `unknown state store "https"`},
		{in: "/var/lib/runbook", err: "is not a state store URL"},
		{in: "etcd:///x", err: "names no member"},
		{in: "etcd://10.0.0.1/x", err: "has no port"},
		{in: "etcd://10.0.0.1:2379/a b", err: "must be a key path"},
		{in: "etcd://10.0.0.1:2379/x?ca_file=ca.pem", err: "TLS files are for etcd+https://"},
		{in: "etcd://10.0.0.1:2379/x?wait=soon", err: `wait="soon" is not a duration`},
		{in: "etcd://10.0.0.1:2379/x?ttl=1s", err: `unknown setting "ttl"`},
		{in: "etcd://root:hunter22@10.0.0.1:2379/x", err: "give the user alone"},
		{in: "etcd://root@10.0.0.1:2379/x", err: "set its password in $" + StatePasswordEnv},
	} {
		s, err := parseState(tc.in, "")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter22") {
				t.Errorf("%q: the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.in == "" {
			if s != nil {
				t.Errorf("empty: %+v, want no store", s)
			}
			continue
		}
		if got := strings.Join(s.endpoints, ","); got != tc.endpoints || s.prefix != tc.prefix {
			t.Errorf("%q: endpoints %s prefix %s, want %s %s", tc.in, got, s.prefix, tc.endpoints, tc.prefix)
		}
	}
}

// useShared records a run in the store of sh and reads it back.
func useShared(t *testing.T, sh *sharedState) error {
	t.Helper()
	st, err := sh.open(os.Stderr, false)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := journal.NewRunID()
	l, err := st.Create(ctx, id, nil)
	if err != nil {
		return err
	}
	line := []byte(`{"seq":1,"time":"2026-12-07T12:00:00Z","run_id":"` + id + `","kind":"run_start"}` + "\n")
	if err := l.Append(1, line); err != nil {
		return err
	}
	data, _, err := st.Read(ctx, id)
	if err != nil {
		return err
	}
	if string(data) != string(line) {
		t.Errorf("read back %q, want %q", data, line)
	}
	ls, err := sh.lockStore()
	if err != nil {
		return err
	}
	defer ls.Close()
	h, err := ls.Acquire(ctx, []string{runlock.HostKey("m1")}, runlock.Me(id, "r"))
	if err != nil {
		return err
	}
	return h.Release()
}

// The shared store over TLS with a client certificate, files relative to
// the folder given (the runbook's, for runbook_state), against a real etcd
// that requires them; a CA that did not sign the server is refused.
func TestSharedStateOverTLS(t *testing.T) {
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
	hosts := strings.TrimPrefix(c.Endpoints()[0], "https://")
	url := func(ca string) string {
		return "etcd+https://" + hosts + "/tls?ca_file=" + ca + "/ca.pem&cert_file=pki/client.pem&key_file=pki/client-key.pem&wait=1s&dial_timeout=1s"
	}
	if _, err := os.Stat(filepath.Join(dir, "pki", "ca.pem")); err != nil || good.ClientCert != filepath.Join(dir, "pki", "client.pem") {
		t.Fatalf("the lab's PKI files are not where the URL says: %+v", good)
	}
	sh, err := parseState(url("pki"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := useShared(t, sh); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	bad, err := parseState(url("other"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := useShared(t, bad); err == nil {
		t.Fatalf("a cluster whose certificate the CA did not sign was trusted (%s)", other.CAFile)
	}
}

// A cluster with auth: the user of the URL logs in with the password of
// $RUNBOOK_STATE_PASSWORD; a wrong one is refused at once, not waited for.
func TestSharedStateLogin(t *testing.T) {
	c := etcdlab.New(t, etcdlab.Options{Version: "3.6.16", Members: 1})
	root, err := c.Client(c.Members[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := root.UserAdd(ctx, "root", "root-pw-1"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx, "runbook"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "runbook", "/team/", clientv3.GetPrefixRangeEnd("/team/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "team", "team-pw-1"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "team", "runbook"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	hosts := strings.TrimPrefix(c.Endpoints()[0], "http://")
	t.Setenv(StatePasswordEnv, "team-pw-1")
	sh, err := parseState("etcd://team@"+hosts+"/team?wait=1s", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := useShared(t, sh); err != nil {
		t.Fatalf("logged in: %v", err)
	}
	t.Setenv(StatePasswordEnv, "wrong-pw-1")
	err = useShared(t, sh)
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v, want refused", err)
	}
	if strings.Contains(err.Error(), "wrong-pw-1") {
		t.Errorf("the error shows the password: %v", err)
	}
}
