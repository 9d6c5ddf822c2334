package backoff

import (
	"testing"
	"time"
)

func TestNextGrowsToMax(t *testing.T) {
	b := &Backoff{}
	var got []time.Duration
	for range 8 {
		got = append(got, b.Next())
	}
	want := []time.Duration{10 * time.Millisecond, 15 * time.Millisecond, 22500 * time.Microsecond,
		33750 * time.Microsecond, 50625 * time.Microsecond, 75937500, 100 * time.Millisecond, 100 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	}
}

func TestSlowAfter(t *testing.T) {
	b := &Backoff{SlowAfter: time.Nanosecond, SlowMax: 300 * time.Millisecond}
	b.Next()
	b.begin = b.begin.Add(-time.Second) // the poll has run long
	var last time.Duration
	for range 20 {
		last = b.Next()
	}
	if last != 300*time.Millisecond {
		t.Errorf("a long poll waits %s, want SlowMax 300ms", last)
	}
}

func TestCapped(t *testing.T) {
	for _, tc := range []struct {
		limit, first, longest time.Duration
	}{
		{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{time.Second, 10 * time.Millisecond, time.Second},
		{0, 10 * time.Millisecond, DefaultSlowMax},
	} {
		b := Capped(tc.limit)
		if got := b.Next(); got != tc.first {
			t.Errorf("Capped(%s): first wait %s, want %s", tc.limit, got, tc.first)
		}
		b.begin = b.begin.Add(-time.Hour)
		var last time.Duration
		for range 40 {
			last = b.Next()
		}
		if last != tc.longest {
			t.Errorf("Capped(%s): longest wait %s, want %s", tc.limit, last, tc.longest)
		}
	}
}
