package etcdload

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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

// memberStatus is what etcd's JSON gateway answers to a status request; its
// 64-bit numbers come as strings.
type memberStatus struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader           string `json:"leader"`
	RaftIndex        string `json:"raftIndex"`
	RaftAppliedIndex string `json:"raftAppliedIndex"`
}

// WatchMembers reads every endpoint's status every interval until ctx ends
// (and once more then), each endpoint on its own, so that a member that does
// not answer delays no reading of the others, and returns each member's
// outages. Each reading is a fresh HTTP request to etcd's JSON gateway: a
// member that is down is seen at once (connection refused), and one that is
// back at its next reading, without a client's reconnection backoff. A member
// is in when it answers, sees a leader, and has applied the newest commit
// index a leader reported but for maxLag entries.
func WatchMembers(ctx context.Context, endpoints []string, interval time.Duration, maxLag uint64) []MemberOutages {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	var mu sync.Mutex
	var commit uint64 // the newest commit index a leader reported
	out := make([]MemberOutages, len(endpoints))
	var wg sync.WaitGroup
	for i, e := range endpoints {
		out[i].Endpoint = e
		wg.Go(func() {
			o := &out[i]
			t := time.NewTicker(interval)
			defer t.Stop()
			final := false
			for {
				now := time.Now()
				st, err := readStatus(hc, e)
				seen := ""
				mu.Lock()
				switch {
				case err != nil:
					seen = "no answer: " + err.Error()
				case st.leader == 0:
					seen = "no leader"
				default:
					if st.leader == st.member && st.index > commit {
						commit = st.index
					}
					if st.applied+maxLag < commit {
						seen = "behind the leader's commit index"
					}
				}
				mu.Unlock()
				open := len(o.Outages) > 0 && o.Outages[len(o.Outages)-1].To.IsZero()
				switch {
				case seen != "" && !open:
					o.Outages = append(o.Outages, Outage{From: now, Seen: seen})
				case seen == "" && open:
					last := &o.Outages[len(o.Outages)-1]
					last.To, last.MS = now, ms(now.Sub(last.From))
				}
				// The last reading comes after ctx ends, so that an outage
				// that ended with the run is seen closed.
				if final {
					return
				}
				select {
				case <-ctx.Done():
					final = true
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	return out
}

type statusReading struct{ member, leader, index, applied uint64 }

func readStatus(hc *http.Client, endpoint string) (statusReading, error) {
	resp, err := hc.Post(strings.TrimSuffix(endpoint, "/")+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		return statusReading{}, err
	}
	defer resp.Body.Close()
	var st memberStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return statusReading{}, err
	}
	num := func(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }
	return statusReading{member: num(st.Header.MemberID), leader: num(st.Leader), index: num(st.RaftIndex), applied: num(st.RaftAppliedIndex)}, nil
}
