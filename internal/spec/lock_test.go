package spec

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLockValues(t *testing.T) {
	for _, tc := range []struct {
		name, lock string
		want       *Lock
	}{
		{"absent", "", nil},
		{"null", "lock: ~\n", nil},
		{"name only", "lock: { name: etcd-prod }\n", &Lock{Name: "etcd-prod"}},
		{"etcd with defaults", "lock:\n  etcd: { endpoints: https://10.0.0.1:2379/ }\n",
			&Lock{Etcd: &EtcdLock{Endpoints: []string{"https://10.0.0.1:2379"}, Prefix: DefaultLockPrefix, TTL: DefaultLockTTL}}},
		{"etcd with everything", "lock:\n  name: prod\n  etcd:\n    endpoints: [https://a:2379, https://b:2379]\n    prefix: /ops/locks/\n    ttl: 30s\n    ca_file: pki/ca.pem\n    cert_file: pki/c.pem\n    key_file: pki/c.key\n    dial_timeout: 3s\n",
			&Lock{Name: "prod", Etcd: &EtcdLock{Endpoints: []string{"https://a:2379", "https://b:2379"}, Prefix: "/ops/locks/",
				TTL: 30 * time.Second, CAFile: "pki/ca.pem", CertFile: "pki/c.pem", KeyFile: "pki/c.key", DialTimeout: 3 * time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "runbook: r\nhosts: etcd\n" + tc.lock + "steps:\n  - stop: { service: etcd }\n"
			rb, ds := LoadBytes("r.yml", []byte(src), testRegistry(), LoadOptions{})
			if ds.HasErrors() || rb == nil {
				t.Fatalf("load: %v", ds)
			}
			got := rb.Lock
			if got != nil {
				got.Pos = want(tc.want).Pos
				if got.Etcd != nil {
					got.Etcd.Pos = tc.want.Etcd.Pos
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Lock = %+v (etcd %+v), want %+v", got, etcdOf(got), tc.want)
			}
		})
	}
}

func want(l *Lock) *Lock {
	if l == nil {
		return &Lock{}
	}
	return l
}

func etcdOf(l *Lock) *EtcdLock {
	if l == nil {
		return nil
	}
	return l.Etcd
}

func TestDecodeLock(t *testing.T) {
	lk, ds := DecodeLock(map[string]any{"name": "prod", "etcd": map[string]any{"endpoints": []any{"https://a:2379"}, "ttl": "20s"}})
	if ds.HasErrors() || lk == nil || lk.Name != "prod" || lk.Etcd == nil || lk.Etcd.TTL != 20*time.Second || lk.Etcd.Endpoints[0] != "https://a:2379" {
		t.Fatalf("DecodeLock = %+v, %v", lk, ds)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"etcd", `"lock" must be a mapping`},
		{map[string]any{"etcd": map[string]any{"endpoints": []any{}}}, `"lock.etcd.endpoints" is empty`},
		{map[string]any{"etcd": map[string]any{"endpoints": "a:2379"}}, `is not a client URL`},
		{map[string]any{"nmae": "x"}, `unknown key "nmae" in "lock"; did you mean "name"?`},
	} {
		lk, ds := DecodeLock(tc.v)
		if lk != nil || !ds.HasErrors() || !strings.Contains(ds[0].Error(), tc.want) {
			t.Errorf("DecodeLock(%v) = %+v, %v; want an error %q", tc.v, lk, ds, tc.want)
		}
	}
}
