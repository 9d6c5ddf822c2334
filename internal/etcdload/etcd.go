package etcdload

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is a Store over etcd's own client: one client with every endpoint for
// the writes, like an application's, and another for reading back.
type Etcd struct {
	write, read *clientv3.Client
}

// CheckEndpoints checks that each endpoint is an http(s) URL with a host and
// a port, as etcd's client wants them.
func CheckEndpoints(endpoints []string) error {
	if len(endpoints) == 0 {
		return errors.New("no endpoint; give them like http://127.0.0.11:2379,http://127.0.0.12:2379")
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("endpoint %q is not a URL like http://127.0.0.11:2379", e)
		}
	}
	return nil
}

// DialEtcd makes the clients. It does not wait for a connection: a cluster
// that is down shows as failed writes, not as a tool that never starts.
func DialEtcd(endpoints []string) (*Etcd, error) {
	if err := CheckEndpoints(endpoints); err != nil {
		return nil, err
	}
	cfg := func(retries uint) clientv3.Config {
		return clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			// The client logs every failed attempt; the report says it better.
			Logger:          zap.NewNop(),
			MaxUnaryRetries: retries,
		}
	}
	// One attempt per write: etcd's client would otherwise retry a Put that
	// found no connection, and a write the report calls failed must be one
	// the application saw fail. (0 would mean the client's default, 100.)
	w, err := clientv3.New(cfg(1))
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	r, err := clientv3.New(cfg(0))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("etcd client for %v: %w", endpoints, err)
	}
	return &Etcd{write: w, read: r}, nil
}

// Put writes once.
func (e *Etcd) Put(ctx context.Context, key, value string) error {
	_, err := e.write.Put(ctx, key, value)
	return err
}

// Range reads [from, to) linearizably, at most limit pairs.
func (e *Etcd) Range(ctx context.Context, from, to string, limit int) ([]KeyValue, bool, error) {
	resp, err := e.read.Get(ctx, from, clientv3.WithRange(to), clientv3.WithLimit(int64(limit)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, false, err
	}
	kvs := make([]KeyValue, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = KeyValue{Key: string(kv.Key), Value: string(kv.Value)}
	}
	return kvs, resp.More, nil
}

// Close closes both clients.
func (e *Etcd) Close() error {
	return errors.Join(e.write.Close(), e.read.Close())
}
