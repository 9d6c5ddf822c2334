package spec

import (
	"reflect"
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
