package runlock

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Defaults of the etcd store.
const (
	DefaultPrefix = "/runbook/locks/"
	DefaultTTL    = 15 * time.Second
	// MinTTL keeps a lease from expiring between two keep-alives on a busy
	// controller; the client renews every third of the TTL.
	MinTTL = 3 * time.Second
	// requestTimeout bounds each request that is not the keep-alive.
	requestTimeout = 10 * time.Second
)

// EtcdConfig is where an etcd store keeps its locks.
type EtcdConfig struct {
	Endpoints   []string
	TLS         *tls.Config // nil for http:// endpoints
	DialTimeout time.Duration
	// Prefix is put before every key: locks under Prefix+"lock/", the audit
	// log under Prefix+"audit/".
	Prefix string
	// TTL is the lease's: how long locks outlive a controller that died.
	TTL time.Duration
	// Username and Password log in to a cluster with auth enabled; empty
	// for one without.
	Username, Password string
}

// EtcdStore keeps locks as keys attached to a lease that the holding process
// keeps alive: a controller that dies stops renewing it, and etcd removes its
// locks when the TTL runs out, for every controller that talks to the cluster.
type EtcdStore struct {
	cli    *clientv3.Client
	prefix string
	ttl    time.Duration
	eps    []string
}

// OpenEtcd connects to the cluster of cfg. Connecting is lazy in etcd's
// client; the first request says whether the cluster answers.
func OpenEtcd(cfg EtcdConfig) (*EtcdStore, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd lock store: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < MinTTL {
		return nil, fmt.Errorf("etcd lock store: ttl %s is under %s", cfg.TTL, MinTTL)
	}
	cli, err := Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd lock store %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &EtcdStore{cli: cli, prefix: cfg.Prefix, ttl: cfg.TTL, eps: cfg.Endpoints}, nil
}

// Dial makes a client of the cluster of cfg (its endpoints, TLS, login and
// dial timeout; Prefix and TTL are the store's). The shared journal talks to
// the cluster that keeps the locks through it, so both connect alike.
func Dial(cfg EtcdConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no endpoints")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
	})
}

func (s *EtcdStore) String() string {
	return fmt.Sprintf("etcd store %s, prefix %s", strings.Join(s.eps, ","), s.prefix)
}

// Close implements Store.
func (s *EtcdStore) Close() error { return s.cli.Close() }

func (s *EtcdStore) lockKey(key string) string { return s.prefix + "lock/" + key }

// Acquire implements Store: one lease for the run, and one transaction that
// puts every key on it only if none is held by another run, so that two runs
// never hold half of each other's keys.
func (s *EtcdStore) Acquire(ctx context.Context, keys []string, h Holder) (Held, error) {
	keys, err := sortedKeys(keys)
	if err != nil {
		return nil, err
	}
	// The lease is granted under ctx, so an unreachable cluster refuses in
	// bounded time; the session's keep-alive must outlive ctx (the
	// command's) and lasts until Release.
	gctx, cancel := context.WithTimeout(ctx, requestTimeout)
	lease, err := s.cli.Grant(gctx, int64(math.Ceil(s.ttl.Seconds())))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: grant a lease: %w", s, err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(math.Ceil(s.ttl.Seconds()))))
	if err != nil {
		return nil, fmt.Errorf("%s: keep the lease alive: %w", s, err)
	}
	for try := 0; try < 5; try++ {
		rev, refused, err := s.tryAcquire(ctx, sess.Lease(), keys, h)
		if err != nil {
			sess.Close()
			return nil, err
		}
		if refused != nil {
			sess.Close()
			return nil, &HeldError{Locks: refused, Store: s.String()}
		}
		if rev > 0 {
			held := &etcdHeld{store: s, sess: sess, keys: keys, lost: newLost()}
			wctx, cancel := context.WithCancel(context.Background())
			held.cancel = cancel
			held.done = make(chan struct{})
			go held.watch(wctx, rev)
			return held, nil
		}
		// Another run changed a key between our read and our write: read again.
	}
	sess.Close()
	return nil, fmt.Errorf("%s: the locks kept changing while taking them; try again", s)
}

// tryAcquire reads the keys and writes them in one transaction that holds only
// if none changed. It returns the revision of the write, or the locks other
// runs hold, or 0 when a key changed in between.
func (s *EtcdStore) tryAcquire(ctx context.Context, lease clientv3.LeaseID, keys []string, h Holder) (int64, []Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	gets := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		gets[i] = clientv3.OpGet(s.lockKey(k))
	}
	resp, err := s.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: read locks: %w", s, err)
	}
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	var refused []Lock
	for i, k := range keys {
		ek := s.lockKey(k)
		kvs := resp.Responses[i].GetResponseRange().Kvs
		if len(kvs) == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(ek), "=", 0))
		} else {
			l := decodeLock(k, kvs[0].Value)
			if l.Holder.RunID != h.RunID {
				refused = append(refused, l)
				continue
			}
			// This run's own lock, from a process of it that died before its
			// lease ran out: a resume takes it over.
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ek), "=", kvs[0].ModRevision))
		}
		val, err := json.Marshal(Lock{Key: k, Holder: h})
		if err != nil {
			return 0, nil, err
		}
		puts = append(puts, clientv3.OpPut(ek, string(val), clientv3.WithLease(lease)))
	}
	if len(refused) > 0 {
		return 0, refused, nil
	}
	tr, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return 0, nil, fmt.Errorf("%s: take locks: %w", s, err)
	}
	if !tr.Succeeded {
		return 0, nil, nil
	}
	return tr.Header.Revision, nil, nil
}

func decodeLock(key string, v []byte) Lock {
	var l Lock
	_ = json.Unmarshal(v, &l)
	l.Key = key
	return l
}

// List implements Store.
func (s *EtcdStore) List(ctx context.Context) ([]Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"lock/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("%s: list locks: %w", s, err)
	}
	var out []Lock
	for _, kv := range resp.Kvs {
		out = append(out, decodeLock(strings.TrimPrefix(string(kv.Key), s.prefix+"lock/"), kv.Value))
	}
	sortLocks(out)
	return out, nil
}

// Break implements Store: each key is deleted only if it is still the lock
// that was read, and the break is recorded under Prefix+"audit/" (no lease:
// the audit log outlives everyone).
func (s *EtcdStore) Break(ctx context.Context, keys []string, b Break) ([]Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var broken []Lock
	for _, k := range keys {
		ek := s.lockKey(k)
		resp, err := s.cli.Get(ctx, ek)
		if err != nil {
			return broken, fmt.Errorf("%s: read lock %s: %w", s, Describe(k), err)
		}
		if len(resp.Kvs) == 0 {
			continue
		}
		kv := resp.Kvs[0]
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(ek), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(ek)).Commit()
		if err != nil {
			return broken, fmt.Errorf("%s: break lock %s: %w", s, Describe(k), err)
		}
		if tr.Succeeded {
			broken = append(broken, decodeLock(k, kv.Value))
		}
	}
	b.Keys, b.Broken = keys, broken
	if b.Broken == nil {
		b.Broken = []Lock{}
	}
	val, err := json.Marshal(b)
	if err != nil {
		return broken, err
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	ak := s.prefix + "audit/" + b.Time.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r[:])
	if _, err := s.cli.Put(ctx, ak, string(val)); err != nil {
		return broken, fmt.Errorf("%s: record the break in the audit log: %w", s, err)
	}
	return broken, nil
}

// Audit returns the audit log, oldest first.
func (s *EtcdStore) Audit(ctx context.Context) ([]Break, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"audit/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("%s: read the audit log: %w", s, err)
	}
	var out []Break
	for _, kv := range resp.Kvs {
		var b Break
		if json.Unmarshal(kv.Value, &b) == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// etcdHeld is what Acquire took from an EtcdStore.
type etcdHeld struct {
	store *EtcdStore
	sess  *concurrency.Session
	keys  []string
	*lost

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
}

func (h *etcdHeld) Keys() []string { return h.keys }

// watch reports the locks lost when the lease ends (the keep-alive failed for
// longer than the TTL) or a key of ours is deleted or rewritten (runbook
// unlock, or a resume of this run elsewhere).
func (h *etcdHeld) watch(ctx context.Context, rev int64) {
	defer close(h.done)
	// The lease is watched on its own: while the cluster is unreachable a
	// new Watch call blocks until it answers, and the lease ending must
	// still be seen then, and must stop that call.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-h.sess.Done():
			h.lost.set(fmt.Errorf("the lease of the run lock ended: %s did not answer its keep-alives for %s", h.store, h.store.ttl))
			stop()
		}
	}()
	ours := map[string]bool{}
	for _, k := range h.keys {
		ours[h.store.lockKey(k)] = true
	}
	wch := h.store.cli.Watch(clientv3.WithRequireLeader(ctx), h.store.prefix+"lock/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return
		case wr, ok := <-wch:
			if !ok {
				// No leader for a moment (a member restarting): watch again
				// shortly; the lease, not the watch, decides whether we hold.
				select {
				case <-ctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
				wch = h.store.cli.Watch(clientv3.WithRequireLeader(ctx), h.store.prefix+"lock/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
				continue
			}
			if wr.CompactRevision != 0 {
				// The history since rev is gone: look at the keys themselves.
				rev = wr.CompactRevision - 1
				if err := h.verify(ctx); err != nil {
					h.lost.set(err)
					return
				}
			}
			for _, ev := range wr.Events {
				rev = ev.Kv.ModRevision
				if !ours[string(ev.Kv.Key)] {
					continue
				}
				if ev.Type == clientv3.EventTypeDelete || clientv3.LeaseID(ev.Kv.Lease) != h.sess.Lease() {
					key := strings.TrimPrefix(string(ev.Kv.Key), h.store.prefix+"lock/")
					h.lost.set(fmt.Errorf("the lock on %s was broken (runbook unlock) or taken over", Describe(key)))
					return
				}
			}
		}
	}
}

// verify checks that every key is still ours (on our lease).
func (h *etcdHeld) verify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for _, k := range h.keys {
		resp, err := h.store.cli.Get(ctx, h.store.lockKey(k))
		if err != nil {
			return nil // unknown, not lost: the lease decides
		}
		if len(resp.Kvs) == 0 || clientv3.LeaseID(resp.Kvs[0].Lease) != h.sess.Lease() {
			return fmt.Errorf("the lock on %s was broken (runbook unlock) or taken over", Describe(k))
		}
	}
	return nil
}

// Release implements Held: revoking the lease deletes every key on it.
func (h *etcdHeld) Release() error {
	h.once.Do(func() {
		h.cancel()
		<-h.done
		h.err = h.sess.Close()
	})
	return h.err
}
