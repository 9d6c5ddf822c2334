package etcdload

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Outage is a time a member was out, as a watch saw it: from the first
// reading that found it not answering, without a leader, or behind the
// leader's commit index by more than the watch allows, to the first reading
// that found it back and caught up (zero when it never came back).
type Outage struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	MS   float64   `json:"ms"`
	Seen string    `json:"seen"` // what the first reading of the outage saw
}

// MemberOutages are the outages of the member at Endpoint.
type MemberOutages struct {
	Endpoint string   `json:"endpoint"`
	Outages  []Outage `json:"outages,omitempty"`
}

// WatchMembers reads every endpoint's status, each through a client of its
// own, every interval until ctx ends and once more then, and returns each
// member's outages. A
// member is in when it answers, sees a leader, and has applied the
// leader's commit index of the same round but for maxLag entries.
func WatchMembers(ctx context.Context, endpoints []string, interval time.Duration, maxLag uint64) []MemberOutages {
	clients := make([]*clientv3.Client, len(endpoints))
	for i, e := range endpoints {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{e}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err == nil {
			clients[i] = c
			defer c.Close()
		}
	}
	out := make([]MemberOutages, len(endpoints))
	for i, e := range endpoints {
		out[i].Endpoint = e
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	// The last round comes after ctx ends, so that an outage that ended
	// with the run is seen closed.
	final := false
	for {
		rctxBase := ctx
		if final {
			var cancel context.CancelFunc
			rctxBase, cancel = context.WithTimeout(context.Background(), time.Second)
			defer cancel()
		}
		now := time.Now()
		sts := make([]*clientv3.StatusResponse, len(endpoints))
		errs := make([]string, len(endpoints))
		var wg sync.WaitGroup
		for i, c := range clients {
			if c == nil {
				errs[i] = "no client"
				continue
			}
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(rctxBase, 500*time.Millisecond)
				defer cancel()
				st, err := c.Status(rctx, endpoints[i])
				if err != nil {
					errs[i] = err.Error()
					return
				}
				sts[i] = st
			})
		}
		wg.Wait()
		if ctx.Err() != nil && !final {
			final = true
			continue
		}
		var commit uint64
		for _, st := range sts {
			if st != nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				commit = st.RaftIndex
			}
		}
		for i, st := range sts {
			seen := ""
			switch {
			case st == nil:
				seen = "no answer: " + errs[i]
			case st.Leader == 0:
				seen = "no leader"
			case commit > 0 && st.RaftAppliedIndex+maxLag < commit:
				seen = "behind the leader's commit index"
			}
			o := &out[i]
			open := len(o.Outages) > 0 && o.Outages[len(o.Outages)-1].To.IsZero()
			switch {
			case seen != "" && !open:
				o.Outages = append(o.Outages, Outage{From: now, Seen: seen})
			case seen == "" && open:
				last := &o.Outages[len(o.Outages)-1]
				last.To, last.MS = now, ms(now.Sub(last.From))
			}
		}
		if final {
			return out
		}
		select {
		case <-ctx.Done():
			final = true
		case <-t.C:
		}
	}
}
