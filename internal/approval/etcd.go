package approval

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// requestTimeout bounds each request to the cluster.
const requestTimeout = 10 * time.Second

// EtcdStore keeps approvals under the run lock's prefix in its etcd cluster:
//
//	PREFIX/approval/RUN_ID/ask/KEY               the run waits there
//	PREFIX/approval/RUN_ID/decision/KEY/TIME-RAND one decision, created only if absent
//
// so every controller that reaches the cluster sees the waits and adds to
// them. Nothing here has a lease: a decision is audit and outlives the run.
type EtcdStore struct {
	cli    *clientv3.Client
	prefix string
	eps    []string
}

// EtcdConfig is the cluster and prefix of the run lock's etcd store.
type EtcdConfig struct {
	Endpoints   []string
	TLS         *tls.Config // nil for http:// endpoints
	DialTimeout time.Duration
	Prefix      string // the lock's: approvals go under Prefix+"approval/"
	// Username and Password log in to a cluster with auth enabled.
	Username, Password string
}

// OpenEtcd connects to the cluster of cfg (lazily, as etcd's client does).
func OpenEtcd(cfg EtcdConfig) (*EtcdStore, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd approval store: no endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, TLS: cfg.TLS, DialTimeout: cfg.DialTimeout,
		Username: cfg.Username, Password: cfg.Password, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd approval store %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &EtcdStore{cli: cli, prefix: cfg.Prefix, eps: cfg.Endpoints}, nil
}

func (s *EtcdStore) String() string {
	return fmt.Sprintf("etcd store %s, prefix %s", strings.Join(s.eps, ","), s.prefix)
}

// Close implements Store.
func (s *EtcdStore) Close() error { return s.cli.Close() }

func (s *EtcdStore) runKey(runID string) string { return s.prefix + "approval/" + runID + "/" }

func (s *EtcdStore) askKey(r Request) string { return s.runKey(r.RunID) + "ask/" + encodeKey(r.Key()) }

func (s *EtcdStore) decisionPrefix(runID, key string) string {
	return s.runKey(runID) + "decision/" + encodeKey(key) + "/"
}

// encodeKey keeps a '/' of a step id or host name from making a level.
func encodeKey(k string) string { return strings.NewReplacer("%", "%25", "/", "%2F").Replace(k) }

// Ask implements Store.
func (s *EtcdStore) Ask(ctx context.Context, req Request) error {
	if !validRunID(req.RunID) {
		return fmt.Errorf("%q is not a run id", Clean(req.RunID))
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.askKey(req), string(b)); err != nil {
		return fmt.Errorf("%s: record the wait for approval: %w", s, err)
	}
	return nil
}

// Requests implements Store.
func (s *EtcdStore) Requests(ctx context.Context, runID string) ([]Request, error) {
	if !validRunID(runID) {
		return nil, fmt.Errorf("%q is not a run id", Clean(runID))
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.runKey(runID)+"ask/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("%s: read the waits of run %s: %w", s, runID, err)
	}
	var out []Request
	for _, kv := range resp.Kvs {
		var r Request
		if json.Unmarshal(kv.Value, &r) == nil && r.RunID == runID && string(kv.Key) == s.askKey(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Done implements Store.
func (s *EtcdStore) Done(ctx context.Context, req Request) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := s.cli.Delete(ctx, s.askKey(req)); err != nil {
		return fmt.Errorf("%s: remove the wait for approval: %w", s, err)
	}
	return nil
}

// Decide implements Store: the key is created only if it does not exist, so
// a decision is never overwritten.
func (s *EtcdStore) Decide(ctx context.Context, d Decision) error {
	if err := d.Check(); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	k := s.decisionPrefix(d.RunID, d.Key()) + d.Time.UTC().Format("20060102T150405.000000000Z") + "-" + randID()
	tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, string(b))).Commit()
	if err != nil {
		return fmt.Errorf("%s: record the decision: %w", s, err)
	}
	if !tr.Succeeded {
		return errors.New("record the decision: its key exists already; try again")
	}
	return nil
}

// Decisions implements Store.
func (s *EtcdStore) Decisions(ctx context.Context, runID, key string) ([]Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	p := s.decisionPrefix(runID, key)
	resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("%s: read the decisions of run %s: %w", s, runID, err)
	}
	var out []Decision
	for _, kv := range resp.Kvs {
		var d Decision
		if json.Unmarshal(kv.Value, &d) != nil || d.RunID != runID || d.Key() != key {
			continue
		}
		d.ID = strings.TrimPrefix(string(kv.Key), p)
		out = append(out, d)
	}
	sortDecisions(out)
	return out, nil
}
