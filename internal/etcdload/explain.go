package etcdload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// logLine is one line of an etcd member's JSON log.
type logLine struct {
	member string
	ts     time.Time
	level  string
	msg    string
	extra  string // the fields that say most: the error, the peer, the leader
}

// notable reports whether a log line tells what a member was doing at the
// time of a failed or slow write: warnings and errors, and the lines of
// stopping, starting, elections and leadership.
func notable(l logLine) bool {
	if l.level == "warn" || l.level == "error" || l.level == "fatal" || l.level == "panic" {
		return true
	}
	for _, w := range []string{"signal", "leader", "elect", "became", "transfer", "stopping", "closed etcd", "ready to serve", "serving client",
		"published local member", "snapshot", "slow", "took too long", "term", "campaign"} {
		if strings.Contains(strings.ToLower(l.msg), w) {
			return true
		}
	}
	return false
}

// readLog reads the JSON lines of one member's log; other lines are skipped.
func readLog(member, path string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		ts, _ := rec["ts"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		l := logLine{member: member, ts: t}
		l.level, _ = rec["level"].(string)
		l.msg, _ = rec["msg"].(string)
		var extra []string
		for _, k := range []string{"error", "took", "expected-duration", "from", "to", "transferee", "remote-peer-id", "signal"} {
			if v, ok := rec[k]; ok {
				extra = append(extra, fmt.Sprintf("%s=%v", k, v))
			}
		}
		l.extra = strings.Join(extra, " ")
		if notable(l) {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// episode is a stretch of time with failed or slow writes, or an outage,
// and what the members logged then.
type episode struct {
	from, to     time.Time
	failed, slow int
	errs         map[string]int
	slowest      float64
	what         []string
}

// lead is how long before a write's start the members' lines count: what
// made it fail or wait began before it did.
const lead = 500 * time.Millisecond

// Explain prints, for each stretch of failed or slow writes and each member
// outage in r, what the members logged in it (logs are name=path).
func Explain(r *Report, logs []string, w io.Writer) error {
	var lines []logLine
	for _, spec := range logs {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("%q is not name=path, like m1=.runbook/lab/members/m1/etcd.log", spec)
		}
		ls, err := readLog(name, path)
		if err != nil {
			return err
		}
		lines = append(lines, ls...)
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].ts.Before(lines[j].ts) })

	var eps []*episode
	add := func(from, to time.Time, failed bool, errMsg string, latency float64) {
		from = from.Add(-lead)
		for _, e := range eps {
			if !from.After(e.to) && !to.Before(e.from) {
				if from.Before(e.from) {
					e.from = from
				}
				if to.After(e.to) {
					e.to = to
				}
				e.count(failed, errMsg, latency)
				return
			}
		}
		e := &episode{from: from, to: to, errs: map[string]int{}}
		e.count(failed, errMsg, latency)
		eps = append(eps, e)
	}
	for _, f := range r.Failures {
		add(f.Started, f.Started.Add(dur(f.LatencyMS)), true, f.Error, f.LatencyMS)
	}
	for _, s := range r.SlowWrites {
		add(s.Started, s.Started.Add(dur(s.LatencyMS)), false, "", s.LatencyMS)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].from.Before(eps[j].from) })
	if len(eps) == 0 {
		fmt.Fprintf(w, "no failed write and none slower than %s\n", SlowWrite)
	}
	for _, e := range eps {
		fmt.Fprintf(w, "%s – %s: %d failed, %d slow writes (slowest %.0f ms)", clock(e.from.Add(lead)), clock(e.to), e.failed, e.slow, e.slowest)
		for msg, n := range e.errs {
			fmt.Fprintf(w, "; %d× %s", n, msg)
		}
		fmt.Fprintln(w)
		printLines(w, lines, e.from, e.to)
	}
	for _, m := range r.Members {
		for _, o := range m.Outages {
			to := o.To
			end := fmt.Sprintf("%.0f ms", o.MS)
			if to.IsZero() {
				to, end = r.Ended, "not back by the end"
			}
			fmt.Fprintf(w, "outage of %s: %s – %s (%s), first seen: %s\n", m.Endpoint, clock(o.From), clock(to), end, o.Seen)
		}
	}
	return nil
}

func (e *episode) count(failed bool, errMsg string, latency float64) {
	if failed {
		e.failed++
		e.errs[errMsg]++
	} else {
		e.slow++
	}
	e.slowest = max(e.slowest, latency)
}

// printLines prints the lines logged between from and to, at most a dozen.
func printLines(w io.Writer, lines []logLine, from, to time.Time) {
	const most = 12
	n := 0
	for _, l := range lines {
		if l.ts.Before(from) || l.ts.After(to) {
			continue
		}
		if n == most {
			fmt.Fprintln(w, "    …")
			return
		}
		fmt.Fprintf(w, "    %s %s %s: %s %s\n", clock(l.ts), l.member, l.level, l.msg, l.extra)
		n++
	}
	if n == 0 {
		fmt.Fprintln(w, "    (no member logged anything notable then: no stop, election or warning; the machine's own load, as the idle way shows)")
	}
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }
