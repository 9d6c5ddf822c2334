package etcdload

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a Store in memory whose misbehaviour each test chooses.
type memStore struct {
	mu sync.Mutex
	kv map[string]string

	// put decides the fate of a write: apply it or not, and the error to return.
	put func(ctx context.Context, key string) (apply bool, err error)
	// rangeErr, when set, fails a Range call (n counts the calls from 1).
	rangeErr func(n int) error
	ranges   int

	inFlight, maxInFlight atomic.Int64
}

func newMemStore() *memStore { return &memStore{kv: map[string]string{}} }

func (m *memStore) Put(ctx context.Context, key, value string) error {
	n := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	for {
		old := m.maxInFlight.Load()
		if n <= old || m.maxInFlight.CompareAndSwap(old, n) {
			break
		}
	}
	apply, err := true, error(nil)
	if m.put != nil {
		apply, err = m.put(ctx, key)
	}
	if apply {
		m.mu.Lock()
		m.kv[key] = value
		m.mu.Unlock()
	}
	return err
}

func (m *memStore) Range(ctx context.Context, from, to string, limit int) ([]KeyValue, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ranges++
	if m.rangeErr != nil {
		if err := m.rangeErr(m.ranges); err != nil {
			return nil, false, err
		}
	}
	var keys []string
	for k := range m.kv {
		if k >= from && k < to {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	out := make([]KeyValue, len(keys))
	for i, k := range keys {
		out[i] = KeyValue{k, m.kv[k]}
	}
	return out, more, nil
}

func testConfig() Config {
	return Config{Prefix: "/load/", RunID: "run1", Rate: 5000, Duration: 10 * time.Second,
		Timeout: time.Second, MaxInFlight: 8}
}

func seqOf(t *testing.T, cfg Config, key string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscanf(strings.TrimPrefix(key, cfg.Prefix), "%d", &n); err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return n
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"relative prefix", func(c *Config) { c.Prefix = "load/" }, `prefix "load/" must start with /`},
		{"no run id", func(c *Config) { c.RunID = "" }, "run id is empty"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "rate 0 must be more than 0"},
		{"huge rate", func(c *Config) { c.Rate = 1e9 }, "at most 100000 writes per second"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration 0s must be more than 0"},
		{"endless duration", func(c *Config) { c.Duration = 48 * time.Hour }, "at most 24h0m0s"},
		{"negative max writes", func(c *Config) { c.MaxWrites = -1 }, "max writes -1 must not be negative"},
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "timeout 0s must be more than 0"},
		{"no slot", func(c *Config) { c.MaxInFlight = 0 }, "max in flight 0 must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestKeysSortInWriteOrder(t *testing.T) {
	c := testConfig()
	prev := ""
	for _, seq := range []int64{1, 2, 9, 10, 99, 100, 12345, 999999999999} {
		k := c.Key(seq)
		if k <= prev {
			t.Errorf("Key(%d) = %q sorts before %q", seq, k, prev)
		}
		prev = k
	}
}

func TestRunStops(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		cancel     bool
		wantReason StopReason
		check      func(t *testing.T, attempted int64)
	}{
		{
			name: "max writes", edit: func(c *Config) { c.MaxWrites = 40 }, wantReason: StopMaxWrites,
			check: func(t *testing.T, n int64) {
				if n != 40 {
					t.Errorf("attempted %d writes, want exactly 40", n)
				}
			},
		},
		{
			name: "duration", edit: func(c *Config) { c.Rate = 100; c.Duration = 300 * time.Millisecond }, wantReason: StopDuration,
			check: func(t *testing.T, n int64) {
				// 100/s for 0.3s is 30 writes, one at once and one per tick;
				// a loaded machine delivers fewer ticks, never more.
				if n < 2 || n > 31 {
					t.Errorf("attempted %d writes in 0.3s at 100/s, want 2..31", n)
				}
			},
		},
		{
			name: "signal", cancel: true, wantReason: StopSignal,
			check: func(t *testing.T, n int64) {
				if n < 1 {
					t.Errorf("attempted %d writes, want at least the first", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			s := newMemStore()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				var once sync.Once
				s.put = func(context.Context, string) (bool, error) {
					once.Do(cancel)
					return true, nil
				}
			}
			rec := NewRecorder(time.Now)
			reason, err := Run(ctx, cfg, s, rec)
			if err != nil {
				t.Fatal(err)
			}
			if reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
			st := rec.Stats()
			tt.check(t, st.Attempted)
			if st.Acknowledged != st.Attempted || st.Failed != 0 {
				t.Errorf("acked %d of %d, failed %d: every write to a healthy store must be acknowledged", st.Acknowledged, st.Attempted, st.Failed)
			}
			v := Verify(t.Context(), cfg, s, rec.Writes(), 7)
			if v.Err != nil || v.Lost != 0 || v.Checked != st.Acknowledged {
				t.Errorf("Verify = %+v, want every acknowledged write checked and none lost", v)
			}
		})
	}
}

// A signal stops new writes but does not cut those in flight short: their
// outcome is the store's, not the interrupt's.
func TestRunSignalKeepsWritesInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 4
	s := newMemStore()
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	var started atomic.Int64
	s.put = func(wctx context.Context, _ string) (bool, error) {
		if started.Add(1) == 4 {
			cancel()
		}
		select {
		case <-release:
			return true, nil
		case <-wctx.Done():
			return false, wctx.Err()
		}
	}
	go func() {
		<-ctx.Done()
		close(release)
	}()
	rec := NewRecorder(time.Now)
	if _, err := Run(ctx, cfg, s, rec); err != nil {
		t.Fatal(err)
	}
	st := rec.Stats()
	if st.Failed != 0 || st.Acknowledged != st.Attempted || st.Attempted < 4 {
		t.Errorf("attempted %d, acked %d, failed %d (%v): writes in flight at the signal must end as the store says",
			st.Attempted, st.Acknowledged, st.Failed, st.Errors)
	}
}

func TestRunBoundsWritesInFlight(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 3
	cfg.MaxWrites = 30
	s := newMemStore()
	s.put = func(context.Context, string) (bool, error) {
		time.Sleep(2 * time.Millisecond) // a slow store, so that writes overlap
		return true, nil
	}
	rec := NewRecorder(time.Now)
	if _, err := Run(t.Context(), cfg, s, rec); err != nil {
		t.Fatal(err)
	}
	if got := s.maxInFlight.Load(); got > 3 {
		t.Errorf("%d writes were in flight at once, want at most 3", got)
	}
	if st := rec.Stats(); st.Attempted != 30 {
		t.Errorf("attempted %d, want 30", st.Attempted)
	}
}

func TestRunTimesOutEachWrite(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWrites = 3
	cfg.Timeout = 20 * time.Millisecond
	s := newMemStore()
	s.put = func(ctx context.Context, _ string) (bool, error) {
		<-ctx.Done()
		return false, ctx.Err()
	}
	rec := NewRecorder(time.Now)
	if _, err := Run(t.Context(), cfg, s, rec); err != nil {
		t.Fatal(err)
	}
	st := rec.Stats()
	if st.Failed != 3 || len(st.Errors) != 1 || st.Errors[0] != (ErrorCount{"context deadline exceeded", 3}) {
		t.Errorf("failed %d with %v, want 3 × context deadline exceeded", st.Failed, st.Errors)
	}
	for _, w := range rec.Writes() {
		if w.Latency < cfg.Timeout {
			t.Errorf("write %d failed after %s, before its timeout %s", w.Seq, w.Latency, cfg.Timeout)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Rate = -1
	if _, err := Run(t.Context(), cfg, newMemStore(), NewRecorder(time.Now)); err == nil {
		t.Fatal("Run with rate -1: no error")
	}
}

// failWhile makes Range calls fail with msg while cond holds for their number.
func failWhile(cond func(n int) bool, msg string) func(int) error {
	return func(n int) error {
		if cond(n) {
			return errors.New(msg)
		}
		return nil
	}
}

func TestVerify(t *testing.T) {
	type fates struct {
		acked   []int64 // applied and acknowledged
		ackLost []int64 // acknowledged but not applied
		failApp []int64 // failed but applied
		failed  []int64 // failed, not applied
		foreign []int64 // applied with another run's value, acknowledged
	}
	tests := []struct {
		name     string
		f        fates
		rangeErr func(n int) error
		timeout  time.Duration
		want     Verification
		wantErr  string
	}{
		{
			name: "all there",
			f:    fates{acked: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			want: Verification{Checked: 10},
		},
		{
			name: "lost and changed writes are counted and named",
			f:    fates{acked: []int64{1, 2, 4, 5, 7, 8, 9}, ackLost: []int64{3, 10}, foreign: []int64{6}},
			want: Verification{Checked: 10, Lost: 3, LostKeys: []string{"/load/000000000003", "/load/000000000006", "/load/000000000010"}},
		},
		{
			name: "failed writes are not lost; those that took effect are counted",
			f:    fates{acked: []int64{1, 2, 3}, failApp: []int64{4, 6}, failed: []int64{5}},
			want: Verification{Checked: 3, FailedApplied: 2},
		},
		{
			name:     "a read that fails is tried again",
			f:        fates{acked: []int64{1, 2, 3, 4, 5, 6, 7, 8}},
			rangeErr: failWhile(func(n int) bool { return n <= 2 }, "etcdserver: leader changed"),
			want:     Verification{Checked: 8},
		},
		{
			name:     "a read back that cannot finish counts only what it read",
			f:        fates{acked: []int64{1, 2, 4, 5, 6, 7, 8}, ackLost: []int64{3}},
			rangeErr: failWhile(func(n int) bool { return n >= 2 }, "connection refused"),
			timeout:  300 * time.Millisecond,
			// the first page (size 3) covers 1..4; the lost write 3 is in it.
			want:    Verification{Checked: 4, Lost: 1, LostKeys: []string{"/load/000000000003"}},
			wantErr: "reading back /load/* after /load/000000000004: connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			s := newMemStore()
			s.rangeErr = tt.rangeErr
			n := len(tt.f.acked) + len(tt.f.ackLost) + len(tt.f.failApp) + len(tt.f.failed) + len(tt.f.foreign)
			writes := make([]Write, n)
			for i := range writes {
				writes[i] = Write{Seq: int64(i + 1), Start: t0, Done: true}
			}
			for _, seq := range tt.f.acked {
				s.kv[cfg.Key(seq)] = cfg.Value(seq)
			}
			for _, seq := range tt.f.foreign {
				s.kv[cfg.Key(seq)] = "run0/" + fmt.Sprint(seq)
			}
			for _, seq := range append(tt.f.failApp, tt.f.failed...) {
				writes[seq-1].Err = "context deadline exceeded"
			}
			for _, seq := range tt.f.failApp {
				s.kv[cfg.Key(seq)] = cfg.Value(seq)
			}
			// Keys outside the run's range, or not ours, are not looked at.
			s.kv["/load/000000000000"] = "x"
			s.kv["/load/x"] = "x"
			s.kv[cfg.Key(int64(n+1))] = "x"

			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			got := Verify(ctx, cfg, s, writes, 3)
			gotErr := ""
			if got.Err != nil {
				gotErr = got.Err.Error()
			}
			got.Err = nil
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Verify() = %+v, want %+v", got, tt.want)
			}
			if !strings.HasPrefix(gotErr, tt.wantErr) || (tt.wantErr == "") != (gotErr == "") {
				t.Errorf("Verify() error = %q, want %q", gotErr, tt.wantErr)
			}
		})
	}
}

func TestVerifyNothing(t *testing.T) {
	s := newMemStore()
	if v := Verify(t.Context(), testConfig(), s, nil, 10); v.Err != nil || v.Checked != 0 || s.ranges != 0 {
		t.Errorf("Verify of no write = %+v after %d reads, want nothing read", v, s.ranges)
	}
}

// A whole run against a store that loses some acknowledged writes and
// applies some failed ones: the report says exactly which.
func TestRunAndVerify(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWrites = 100
	s := newMemStore()
	s.put = func(_ context.Context, key string) (bool, error) {
		switch seq := seqOf(t, cfg, key); {
		case seq%25 == 0:
			return false, nil // acknowledged, never applied: lost
		case seq%10 == 0:
			return true, errors.New("context deadline exceeded") // applied, but the answer was lost
		case seq%7 == 0:
			return false, errors.New("etcdserver: no leader")
		}
		return true, nil
	}
	rec := NewRecorder(time.Now)
	reason, err := Run(t.Context(), cfg, s, rec)
	if err != nil {
		t.Fatal(err)
	}
	v := Verify(t.Context(), cfg, s, rec.Writes(), 16)
	r := NewReport(cfg, []string{"mem://"}, reason, rec.Stats(), v)
	// 25,50,75,100 lost; 10,20,30,40,60,70,80,90 failed but applied;
	// 7,14,21,28,35,42,49,56,63,77,84,91,98 failed.
	want := Counts{Attempted: 100, Acknowledged: 79, Failed: 21, Lost: 4, FailedApplied: 8}
	got := r.Writes
	got.Slow = 0 // the machine's, not the run's
	if got != want {
		t.Errorf("counts = %+v, want %+v", r.Writes, want)
	}
	if r.OK() {
		t.Error("a run that lost writes is OK")
	}
	if got := strings.Join(r.Verify.LostKeys, " "); got != "/load/000000000025 /load/000000000050 /load/000000000075 /load/000000000100" {
		t.Errorf("lost keys = %s", got)
	}
}
