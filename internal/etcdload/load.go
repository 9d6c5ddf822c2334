package etcdload

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store is what a run needs from etcd. Put is called once per write and must
// not retry: a write that fails is what the run measures.
type Store interface {
	Put(ctx context.Context, key, value string) error
	// Range returns up to limit pairs with from <= key < to, sorted by key,
	// read linearizably, and whether more pairs follow.
	Range(ctx context.Context, from, to string, limit int) ([]KeyValue, bool, error)
}

// KeyValue is one pair read back.
type KeyValue struct {
	Key, Value string
}

// Config says how hard and how long to write.
type Config struct {
	Prefix      string        // keys are Prefix + the sequence number, zero-padded
	RunID       string        // part of every value, so keys left by an earlier run do not count
	Rate        float64       // writes started per second
	Duration    time.Duration // stop starting writes after this long
	MaxWrites   int64         // stop after this many writes; 0: no limit
	Timeout     time.Duration // per write
	MaxInFlight int           // writes waiting for an answer at once; the rate drops when reached
}

// Limits on Config, so that a typo cannot start an unbounded or absurd run.
const (
	MaxRate     = 100000
	MaxDuration = 24 * time.Hour
)

// Validate checks the configuration and says what would be right.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Prefix == "" || !strings.HasPrefix(c.Prefix, "/") {
		bad("prefix %q must start with /, like /load/", c.Prefix)
	}
	if c.RunID == "" {
		bad("run id is empty")
	}
	if !(c.Rate > 0 && c.Rate <= MaxRate) {
		bad("rate %v must be more than 0 and at most %d writes per second", c.Rate, MaxRate)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		bad("duration %s must be more than 0 and at most %s", c.Duration, MaxDuration)
	}
	if c.MaxWrites < 0 {
		bad("max writes %d must not be negative (0 means no limit)", c.MaxWrites)
	}
	if c.Timeout <= 0 {
		bad("timeout %s must be more than 0, like 2s", c.Timeout)
	}
	if c.MaxInFlight < 1 {
		bad("max in flight %d must be at least 1", c.MaxInFlight)
	}
	return errors.Join(errs...)
}

// seqDigits pads sequence numbers so that keys sort in write order and a
// verification can read them back as ranges.
const seqDigits = 12

// Key is the key of write seq.
func (c Config) Key(seq int64) string {
	return c.Prefix + fmt.Sprintf("%0*d", seqDigits, seq)
}

// Value is the value of write seq.
func (c Config) Value(seq int64) string {
	return c.RunID + "/" + strconv.FormatInt(seq, 10)
}

// StopReason says why a run stopped starting writes.
type StopReason string

const (
	StopDuration  StopReason = "duration"
	StopMaxWrites StopReason = "max-writes"
	StopSignal    StopReason = "signal"
)

// Run writes until ctx is done, Duration has passed or MaxWrites were
// started, then waits for the writes in flight. Cancelling ctx only stops new
// writes: a write in flight keeps its own timeout, so an interrupt is not
// recorded as a failed write. The recorder's clock gives the times of the
// statistics; the pace is kept with real timers.
func Run(ctx context.Context, cfg Config, s Store, rec *Recorder) (StopReason, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	deadline := time.NewTimer(cfg.Duration)
	defer deadline.Stop()
	// A ticker drops the ticks it could not deliver: after a stall the run
	// goes on at its rate instead of bursting to catch up.
	tick := time.NewTicker(max(interval, time.Microsecond))
	defer tick.Stop()
	slots := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
	}()

	var started int64
	reason := StopReason("")
	for reason == "" {
		if cfg.MaxWrites > 0 && started >= cfg.MaxWrites {
			reason = StopMaxWrites
			break
		}
		// The first write goes at once; each next one waits for a tick and
		// then for a free slot.
		if started > 0 {
			select {
			case <-ctx.Done():
				reason = StopSignal
				continue
			case <-deadline.C:
				reason = StopDuration
				continue
			case <-tick.C:
			}
		}
		select {
		case <-ctx.Done():
			reason = StopSignal
			continue
		case <-deadline.C:
			reason = StopDuration
			continue
		case slots <- struct{}{}:
		}
		started++
		seq := rec.Begin()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
			defer cancel()
			rec.End(seq, s.Put(wctx, cfg.Key(seq), cfg.Value(seq)))
		}()
	}
	rec.Stop()
	return reason, nil
}

// Verification is what reading the writes back found.
type Verification struct {
	Checked       int64    // acknowledged writes read back
	Lost          int64    // acknowledged, but missing or with another value
	LostKeys      []string // the first few of them
	FailedApplied int64    // failed (timed out, say) but present: the write took effect anyway
	Err           error    // the read back could not finish; Lost counts only what was read
}

// readTimeout bounds one read of a page, so that a member that hangs is
// left for another try rather than holding the verification.
const readTimeout = 5 * time.Second

// maxLostKeys bounds the keys a report lists; the count is always complete.
const maxLostKeys = 20

// Verify reads back every write of the recording, in pages of pageSize keys,
// and counts the acknowledged ones that are missing or changed. Reads are
// retried until ctx ends: unlike a write, a read can be repeated without
// changing what it measures.
func Verify(ctx context.Context, cfg Config, s Store, writes []Write, pageSize int) Verification {
	var v Verification
	if len(writes) == 0 {
		return v
	}
	found := make(map[int64]bool, len(writes)) // seq → the value is ours
	from, to := cfg.Key(1), cfg.Key(int64(len(writes))+1)
	for {
		var (
			kvs  []KeyValue
			more bool
			err  error
		)
		for try := 0; ; try++ {
			rctx, cancel := context.WithTimeout(ctx, readTimeout)
			kvs, more, err = s.Range(rctx, from, to, pageSize)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(try+1)*200*time.Millisecond, 2*time.Second)):
			}
		}
		if err != nil {
			where := "from the first key"
			if last := strings.TrimSuffix(from, "\x00"); last != from {
				where = "after " + last
			}
			v.Err = fmt.Errorf("reading back %s* %s: %w", cfg.Prefix, where, err)
			break
		}
		for _, kv := range kvs {
			seq, perr := strconv.ParseInt(strings.TrimPrefix(kv.Key, cfg.Prefix), 10, 64)
			if perr != nil || seq < 1 || seq > int64(len(writes)) {
				continue
			}
			found[seq] = kv.Value == cfg.Value(seq)
		}
		if !more || len(kvs) == 0 {
			break
		}
		from = kvs[len(kvs)-1].Key + "\x00"
	}
	// When the read stopped early, only the keys below where it stopped
	// were seen; the others are not known to be lost.
	seen := func(seq int64) bool { return v.Err == nil || cfg.Key(seq) < from }
	for _, w := range writes {
		if !seen(w.Seq) {
			continue
		}
		if !w.Acked() {
			if found[w.Seq] {
				v.FailedApplied++
			}
			continue
		}
		v.Checked++
		if !found[w.Seq] {
			v.Lost++
			if len(v.LostKeys) < maxLostKeys {
				v.LostKeys = append(v.LostKeys, cfg.Key(w.Seq))
			}
		}
	}
	return v
}
