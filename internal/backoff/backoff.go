// Package backoff gives the intervals of a poll that waits for a state:
// short at first, because most of the states waited for (a process gone, a
// port open, a member caught up) arrive within a few hundred milliseconds and
// every interval's remainder is time added to an outage; longer later, so a
// long wait over SSH does not flood the host.
package backoff

import "time"

// Defaults of a Backoff with zero fields.
const (
	DefaultFirst  = 10 * time.Millisecond
	DefaultFactor = 1.5
	// DefaultMax is the interval a poll settles on during its first
	// DefaultSlowAfter: a state reached then is seen at most this late.
	DefaultMax = 100 * time.Millisecond
	// DefaultSlowAfter is how long a poll keeps its intervals at most Max;
	// after it they grow to SlowMax.
	DefaultSlowAfter = 5 * time.Second
	DefaultSlowMax   = 500 * time.Millisecond
)

// Backoff hands out the waits between the tries of one poll. The zero value
// uses the defaults; a Backoff is for one poll, by one goroutine.
type Backoff struct {
	First     time.Duration // the first wait
	Factor    float64       // each wait is the one before times this
	Max       time.Duration // no wait longer than this, until SlowAfter
	SlowAfter time.Duration // from this long after the first Next, SlowMax caps the waits
	SlowMax   time.Duration

	next  time.Duration
	begin time.Time
}

// Capped returns a Backoff whose waits never exceed limit: a poll whose
// caller declared an interval treats it as the longest wait.
func Capped(limit time.Duration) *Backoff {
	b := &Backoff{}
	if limit > 0 {
		b.Max, b.SlowMax = min(DefaultMax, limit), limit
		b.First = min(DefaultFirst, limit)
	}
	return b
}

// Next returns how long to wait before the next try.
func (b *Backoff) Next() time.Duration {
	if b.begin.IsZero() {
		b.begin = time.Now()
		b.First = or(b.First, DefaultFirst)
		b.Max = or(b.Max, DefaultMax)
		b.SlowAfter = or(b.SlowAfter, DefaultSlowAfter)
		b.SlowMax = max(or(b.SlowMax, DefaultSlowMax), b.Max)
		if b.Factor < 1 {
			b.Factor = DefaultFactor
		}
		b.next = min(b.First, b.Max)
	}
	limit := b.Max
	if time.Since(b.begin) >= b.SlowAfter {
		limit = b.SlowMax
	}
	d := min(b.next, limit)
	b.next = min(time.Duration(float64(b.next)*b.Factor), b.SlowMax)
	return d
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
