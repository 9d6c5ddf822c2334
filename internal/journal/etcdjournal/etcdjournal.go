// Package etcdjournal keeps the journals of runs in an etcd cluster, besides
// each controller's state folder, so that any controller that reaches the
// cluster lists, shows and resumes them. Under a prefix P:
//
//	P/index/RUN_ID               the run index: who started the run, where, when
//	P/runs/RUN_ID/key            the run's key (see journal.KeyPath)
//	P/runs/RUN_ID/events/SEQ     event SEQ (20 digits), the line the state folder's file has
//	P/runs/RUN_ID/parts/SEQ/W/N  the pieces of a line too large for one request
//
// An event is put by a transaction that requires the event before it and
// not the event itself, so two processes continuing one run cannot both
// append: the second is refused. Put returns once a quorum of the cluster
// has written it to its log, before the step it records acts.
package etcdjournal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runbookhq/runbook/internal/journal"
)

// Defaults of a Store.
const (
	// DefaultWait bounds how long an event waits for an unreachable cluster
	// before the run stops: no step starts whose start is not recorded.
	DefaultWait = 30 * time.Second
	// requestTimeout bounds each try of a request: an answer takes
	// milliseconds, and a try that timed out is tried again.
	requestTimeout = 2 * time.Second
	// minTry is the least a try is given, even at the end of the wait.
	minTry = 500 * time.Millisecond
	// retryEvery is the pause between two tries of an event.
	retryEvery = 250 * time.Millisecond
	seqDigits  = 20
	// partSize is the largest piece of a line put in one request: etcd
	// refuses requests over --max-request-bytes, 1.5 MiB by default, and a
	// step's output may be larger.
	partSize = 512 << 10
)

// partsMark begins the value of an event whose line is kept in pieces: no
// journal line begins with a NUL.
const partsMark = "\x00parts "

// Config is where a Store keeps the journals.
type Config struct {
	// Client talks to the cluster; the Store closes it.
	Client *clientv3.Client
	// Prefix is put before every key; a "/" is added when it lacks one.
	Prefix string
	// Name says where the store is in messages, like etcd://10.0.0.1:2379/runbook.
	Name string
	// Wait bounds the retries of an event: DefaultWait when 0.
	Wait time.Duration
	// OnWait, when set, is told once per event that the cluster does not
	// answer and how long the run will wait for it: the operator must know
	// why nothing happens.
	OnWait func(err error, wait time.Duration)
}

// Store is a journal.Shared in an etcd cluster.
type Store struct {
	cli    *clientv3.Client
	prefix string
	name   string
	wait   time.Duration
	onWait func(error, time.Duration)
}

var _ journal.Shared = (*Store)(nil)

// New returns the store of cfg. It does not talk to the cluster yet.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("etcd journal store: no client")
	}
	p := cfg.Prefix
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Name == "" {
		cfg.Name = "etcd " + strings.Join(cfg.Client.Endpoints(), ",") + " prefix " + p
	}
	return &Store{cli: cfg.Client, prefix: p, name: cfg.Name, wait: cfg.Wait, onWait: cfg.OnWait}, nil
}

func (s *Store) String() string { return "shared journal " + s.name }

// Close closes the client.
func (s *Store) Close() error { return s.cli.Close() }

func (s *Store) indexKey(runID string) string { return s.prefix + "index/" + runID }
func (s *Store) runKey(runID string) string   { return s.prefix + "runs/" + runID + "/key" }
func (s *Store) eventsPrefix(runID string) string {
	return s.prefix + "runs/" + runID + "/events/"
}
func (s *Store) partsPrefix(runID string) string { return s.prefix + "runs/" + runID + "/parts/" }
func (s *Store) eventKey(runID string, seq int64) string {
	return fmt.Sprintf("%s%0*d", s.eventsPrefix(runID), seqDigits, seq)
}

// IndexEntry is a run's line in the run index.
type IndexEntry struct {
	RunID      string    `json:"run_id"`
	User       string    `json:"user,omitempty"`
	Controller string    `json:"controller,omitempty"`
	Created    time.Time `json:"created"`
}

// Create implements journal.Shared: the index entry and the key, in one
// transaction that requires the run to have neither.
func (s *Store) Create(ctx context.Context, runID string, key []byte) (journal.Log, error) {
	if err := journal.ValidRunID(runID); err != nil {
		return nil, err
	}
	ent := IndexEntry{RunID: runID, Created: time.Now().UTC()}
	if u, err := user.Current(); err == nil {
		ent.User = u.Username
	}
	ent.Controller, _ = os.Hostname()
	val, err := json.Marshal(ent)
	if err != nil {
		return nil, err
	}
	puts := []clientv3.Op{clientv3.OpPut(s.indexKey(runID), string(val))}
	if key != nil {
		puts = append(puts, clientv3.OpPut(s.runKey(runID), string(key)))
	}
	var tr *clientv3.TxnResponse
	err = s.retry(ctx, func(ctx context.Context) error {
		var err error
		tr, err = s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(s.indexKey(runID)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.eventKey(runID, 1)), "=", 0),
		).Then(puts...).Else(clientv3.OpGet(s.indexKey(runID))).Commit()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: record run %s: %w", s, runID, err)
	}
	if !tr.Succeeded {
		// A retry of a transaction that went through but whose answer was lost.
		if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && bytes.Equal(kvs[0].Value, val) {
			return &log{s: s, runID: runID}, nil
		}
		return nil, fmt.Errorf("%s: run %s: %w", s, runID, journal.ErrExists)
	}
	return &log{s: s, runID: runID}, nil
}

// Continue implements journal.Shared. The last event must be lastSeq: a
// store that holds more was continued by another process since it was read.
func (s *Store) Continue(ctx context.Context, runID string, lastSeq int64) (journal.Log, error) {
	if err := journal.ValidRunID(runID); err != nil {
		return nil, err
	}
	var resp *clientv3.TxnResponse
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.indexKey(runID), clientv3.WithCountOnly()),
			clientv3.OpGet(s.eventKey(runID, lastSeq+1), clientv3.WithCountOnly()),
		).Commit()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: run %s: %w", s, runID, err)
	}
	if resp.Responses[0].GetResponseRange().Count == 0 {
		return nil, fmt.Errorf("%s: no run %s: %w", s, runID, fs.ErrNotExist)
	}
	if resp.Responses[1].GetResponseRange().Count != 0 {
		return nil, fmt.Errorf("%s: run %s has events after %d: another process continued it; read it again", s, runID, lastSeq)
	}
	return &log{s: s, runID: runID}, nil
}

// log appends the events of one run.
type log struct {
	s     *Store
	runID string
	mu    sync.Mutex
}

// ErrConflict means another process appended to the run's journal.
var ErrConflict = errors.New("another process writes this run's journal")

// Append implements journal.Log: event seq is put only if event seq-1 is
// there and seq is not. A try whose answer was lost is recognised on the
// next by the line being there already.
func (l *log) Append(seq int64, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 1 {
		return fmt.Errorf("%s: bad event number %d", l.s, seq)
	}
	s := l.s
	key := s.eventKey(l.runID, seq)
	value := line
	if len(line) > partSize {
		var err error
		if value, err = l.putParts(seq, line); err != nil {
			return err
		}
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	elses := []clientv3.Op{clientv3.OpGet(key)}
	if seq > 1 {
		prev := s.eventKey(l.runID, seq-1)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(prev), ">", 0))
		elses = append(elses, clientv3.OpGet(prev, clientv3.WithCountOnly()))
	}
	var tr *clientv3.TxnResponse
	err := s.retry(context.Background(), func(ctx context.Context) error {
		var err error
		tr, err = s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, string(value))).Else(elses...).Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: event %d: %w", s, seq, err)
	}
	if tr.Succeeded {
		return nil
	}
	if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		if bytes.Equal(kvs[0].Value, value) {
			return nil
		}
		return fmt.Errorf("%s: run %s has another event %d: %w", s, l.runID, seq, ErrConflict)
	}
	return fmt.Errorf("%s: run %s has no event %d to follow: %w", s, l.runID, seq-1, ErrConflict)
}

// putParts puts a large line in pieces under a name of this writer's own
// (a writer that loses the event to another cannot overwrite the winner's
// pieces), before the event itself, which names them: a reader sees the
// event only once its pieces are there.
func (l *log) putParts(seq int64, line []byte) ([]byte, error) {
	var w [6]byte
	_, _ = rand.Read(w[:])
	prefix := fmt.Sprintf("%s%0*d/%s/", l.s.partsPrefix(l.runID), seqDigits, seq, hex.EncodeToString(w[:]))
	n := 0
	for off := 0; off < len(line); off += partSize {
		piece := line[off:min(off+partSize, len(line))]
		key := fmt.Sprintf("%s%06d", prefix, n)
		if err := l.s.retry(context.Background(), func(ctx context.Context) error {
			_, err := l.s.cli.Put(ctx, key, string(piece))
			return err
		}); err != nil {
			return nil, fmt.Errorf("%s: event %d, piece %d: %w", l.s, seq, n, err)
		}
		n++
	}
	return fmt.Appendf(nil, "%s%s %d", partsMark, prefix, n), nil
}

// joinParts reads the line an event kept in pieces names.
func (s *Store) joinParts(ctx context.Context, runID string, mark []byte) ([]byte, error) {
	var prefix string
	var n int
	if _, err := fmt.Sscanf(string(mark[len(partsMark):]), "%s %d", &prefix, &n); err != nil || !strings.HasPrefix(prefix, s.partsPrefix(runID)) {
		return nil, fmt.Errorf("bad pieces record %q", mark)
	}
	var resp *clientv3.GetResponse
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) != n {
		return nil, fmt.Errorf("%d of its %d pieces are there", len(resp.Kvs), n)
	}
	var line []byte
	for _, kv := range resp.Kvs {
		line = append(line, kv.Value...)
	}
	return line, nil
}

func (l *log) Close() error { return nil }

// retry runs op until it succeeds, ctx ends, or the store's wait has
// passed since it began; each try is bounded, so that a cluster that does
// not answer is told to OnWait (once) within seconds, not after the wait.
func (s *Store) retry(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(s.wait)
	told := false
	for {
		rctx, cancel := context.WithTimeout(ctx, min(requestTimeout, max(time.Until(deadline)/2, minTry)))
		err := op(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return err
		}
		if !told && s.onWait != nil {
			told = true
			s.onWait(err, s.wait)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("the cluster did not answer for %s: %w", s.wait, err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(retryEvery, time.Until(deadline))):
		}
	}
}

// retryable tells an unreachable cluster (worth waiting for) from a refusal
// that will not change (auth, a request too large).
func retryable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"authentication failed", "permission denied", "invalid auth token", "request is too large", "too many operations"} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	return true
}

// Read implements journal.Store.
func (s *Store) Read(ctx context.Context, runID string) ([]byte, []byte, error) {
	if err := journal.ValidRunID(runID); err != nil {
		return nil, nil, err
	}
	var resp *clientv3.TxnResponse
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		// One transaction: the events and the key of one revision.
		resp, err = s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.indexKey(runID), clientv3.WithCountOnly()),
			clientv3.OpGet(s.runKey(runID)),
			clientv3.OpGet(s.eventsPrefix(runID), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
		).Commit()
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read run %s: %w", s, runID, err)
	}
	if resp.Responses[0].GetResponseRange().Count == 0 {
		return nil, nil, fmt.Errorf("%s: no run %s: %w", s, runID, fs.ErrNotExist)
	}
	var key []byte
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
		key = kvs[0].Value
	}
	var data bytes.Buffer
	for i, kv := range resp.Responses[2].GetResponseRange().Kvs {
		want := s.eventKey(runID, int64(i+1))
		if string(kv.Key) != want {
			return nil, nil, fmt.Errorf("%s: run %s: event %d is missing (found %s)", s, runID, i+1, kv.Key)
		}
		line := kv.Value
		if bytes.HasPrefix(line, []byte(partsMark)) {
			var err error
			if line, err = s.joinParts(ctx, runID, line); err != nil {
				return nil, nil, fmt.Errorf("%s: run %s: event %d: %w", s, runID, i+1, err)
			}
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			return nil, nil, fmt.Errorf("%s: run %s: event %d is not a journal line", s, runID, i+1)
		}
		data.Write(line)
	}
	return data.Bytes(), key, nil
}

// Load implements journal.Store. Whether the run is live is not the
// journal's to say: the run lock in the same cluster says it.
func (s *Store) Load(ctx context.Context, runID string) (*journal.State, error) {
	data, _, err := s.Read(ctx, runID)
	if err != nil {
		return nil, err
	}
	st, err := journal.Replay(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: run %s: %w", s, runID, err)
	}
	if st.RunID != runID {
		return nil, fmt.Errorf("%s: run %s: its events are of run %q", s, runID, st.RunID)
	}
	return st, nil
}

// List implements journal.Store: every run of the index, replayed.
func (s *Store) List(ctx context.Context) ([]journal.Summary, error) {
	var resp *clientv3.GetResponse
	err := s.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.cli.Get(ctx, s.prefix+"index/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list runs: %w", s, err)
	}
	var out []journal.Summary
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), s.prefix+"index/")
		if journal.ValidRunID(id) != nil {
			continue
		}
		st, err := s.Load(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			sum := journal.Summary{ID: id, Status: journal.RunDamaged, Err: err}
			if t, perr := time.Parse("20060102T150405Z", strings.SplitN(id, "-", 2)[0]); perr == nil {
				sum.Started = t
			}
			out = append(out, sum)
			continue
		}
		out = append(out, st.Summary())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}
