package etcdload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// logLine is one line of an etcd member's JSON log that says what the
// member was doing: stopping, starting, leadership, warnings.
type logLine struct {
	member string
	ts     time.Time
	level  string
	msg    string
	fields map[string]string // the few fields an explanation reads: took, error, transferee-member-id, ...
}

// putTrace is what etcd logged of one slow put: the member that served it,
// how long it took there, and the step of the request that took longest.
type putTrace struct {
	member string
	took   time.Duration
	step   string
}

// memberLogs is what the members' logs hold for an explanation.
type memberLogs struct {
	lines []logLine            // in time order
	ids   map[string]string    // raft member id (hex) → member name
	puts  map[string]*putTrace // key → etcd's trace of its put
}

// Classes of causes, the tag an explanation prints in brackets.
const (
	CauseTransfer  = "leader-transfer"   // leadership moved from one member to another
	CauseElection  = "leader-election"   // the cluster had no leader for a while
	CauseStopping  = "member-stopping"   // a member shut down (SIGTERM) while serving
	CauseStarting  = "member-starting"   // a member started and joined again
	CauseFsync     = "wal-fsync"         // etcd logged a slow fdatasync of its WAL
	CauseApply     = "slow-apply"        // etcd logged an apply that took too long
	CauseHeartbeat = "leader-overloaded" // the leader was late with heartbeats
	CauseLoad      = "machine-load"      // nothing in any member's log
)

var (
	// The member's own raft id, as raft's lines about itself name it.
	selfID  = regexp.MustCompile(`^(?:raft\.node: )?([0-9a-f]{16}) (?:became |is starting|\[term|\[logterm|received |has received|switched |lost leader|elected leader)`)
	newRaft = regexp.MustCompile(`^newRaft ([0-9a-f]{16}) `)
	// raft's "X [term N] starts to transfer leadership to Y".
	transferTo = regexp.MustCompile(`^([0-9a-f]{16}) \[term \d+\] starts to transfer leadership to ([0-9a-f]{16})`)
	putKey     = regexp.MustCompile(`key:"?([^;" ]+)`)
	traceStep  = regexp.MustCompile(`'([^']+)'\s+\(duration: ([^)]+)\)`)
)

// notable reports whether a log line can tell what a member was doing at
// the time of a failed or slow write.
func notable(l logLine) bool {
	if l.level == "warn" || l.level == "error" || l.level == "fatal" || l.level == "panic" {
		return l.msg != "request stats"
	}
	lower := strings.ToLower(l.msg)
	for _, w := range []string{"signal", "leader", "elect", "became", "transfer", "closing etcd", "closed etcd", "starting an etcd server",
		"ready to serve", "serving client", "newraft", "took too long", "slow fdatasync", "msgtimeoutnow"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// readLog reads the JSON lines of one member's log into logs; other lines
// are skipped.
func readLog(member, path string, logs *memberLogs) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
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
		l := logLine{member: member, ts: t, fields: map[string]string{}}
		l.level, _ = rec["level"].(string)
		l.msg, _ = rec["msg"].(string)
		for _, k := range []string{"error", "took", "signal", "transferee-member-id", "exceeded-duration", "local-member-id", "duration", "time spent", "detail", "request content"} {
			if v, ok := rec[k]; ok {
				l.fields[k] = fmt.Sprint(v)
			}
		}
		if m := selfID.FindStringSubmatch(l.msg); m != nil {
			logs.ids[m[1]] = member
		} else if m := newRaft.FindStringSubmatch(l.msg); m != nil {
			logs.ids[m[1]] = member
		}
		if id := l.fields["local-member-id"]; id != "" {
			logs.ids[id] = member
		}
		switch {
		case strings.HasPrefix(l.msg, "trace[") && strings.HasSuffix(l.msg, "] put"):
			tracePut(logs, l, rec["steps"])
		case l.msg == "request stats" && strings.HasSuffix(fmt.Sprint(rec["response type"]), "/Put"):
			if m := putKey.FindStringSubmatch(l.fields["request content"]); m != nil && logs.puts[m[1]] == nil {
				took, _ := time.ParseDuration(l.fields["time spent"])
				logs.puts[m[1]] = &putTrace{member: member, took: took}
			}
		}
		if notable(l) {
			logs.lines = append(logs.lines, l)
		}
	}
	return sc.Err()
}

// tracePut notes etcd's trace of a put that took longer than etcd's own
// threshold (100 ms): which member served it and where its time went.
func tracePut(logs *memberLogs, l logLine, steps any) {
	m := putKey.FindStringSubmatch(l.fields["detail"])
	if m == nil {
		return
	}
	took, _ := time.ParseDuration(l.fields["duration"])
	pt := &putTrace{member: l.member, took: took}
	var longest time.Duration
	if list, ok := steps.([]any); ok {
		for _, s := range list {
			if sm := traceStep.FindStringSubmatch(fmt.Sprint(s)); sm != nil {
				if d, err := time.ParseDuration(sm[2]); err == nil && d > longest {
					longest, pt.step = d, sm[1]
				}
			}
		}
	}
	logs.puts[m[1]] = pt
}

// sortLines puts the lines of all members in time order.
func sortLines(ml *memberLogs) {
	sort.SliceStable(ml.lines, func(i, j int) bool { return ml.lines[i].ts.Before(ml.lines[j].ts) })
}

// span is a stretch of time something went on in the cluster.
type span struct {
	from, to time.Time
	subject  string // the member(s): "m2", "m1→m2"
	detail   string
}

func (s span) overlaps(from, to time.Time) bool { return !s.from.After(to) && !s.to.Before(from) }

// events are the stretches the members' logs show: leader transfers and
// elections, members stopping and starting.
type events struct {
	transfers, elections, stops, starts []span
}

// stopLinger is how long a stop counts when the log does not show its end.
const stopLinger = 3 * time.Second

func findEvents(logs *memberLogs) events {
	var ev events
	name := func(id string) string {
		if n := logs.ids[id]; n != "" {
			return n
		}
		return id
	}
	// newLeader finds the first member that became leader from at on, within d.
	newLeader := func(at time.Time, d time.Duration) (string, time.Time, bool) {
		for _, l := range logs.lines {
			if l.ts.Before(at) || l.ts.After(at.Add(d)) {
				continue
			}
			if strings.Contains(l.msg, " became leader at term ") {
				return l.member, l.ts, true
			}
		}
		return "", time.Time{}, false
	}
	stopStart := map[string]time.Time{}
	startStart := map[string]time.Time{}
	for i, l := range logs.lines {
		switch {
		case l.msg == "leadership transfer starting" || transferTo.MatchString(l.msg):
			to := name(l.fields["transferee-member-id"])
			if m := transferTo.FindStringSubmatch(l.msg); m != nil {
				to = name(m[2])
			}
			if n := len(ev.transfers); n > 0 && l.ts.Sub(ev.transfers[n-1].from) < time.Second {
				continue // etcd's line and raft's line of one transfer
			}
			end := l.ts.Add(time.Second)
			detail := "no new leader in the logs"
			if who, at, ok := newLeader(l.ts, 5*time.Second); ok {
				end, to = at, who
				detail = fmt.Sprintf("%s led %s later", who, ms3(at.Sub(l.ts)))
			}
			// Whether the leader had to catch the transferee up first: it
			// drops proposals meanwhile, so a transfer to a member behind
			// lasts longer.
			if tn := after(logs.lines[i:], l.member, "MsgTimeoutNow", time.Second); tn != nil {
				if strings.Contains(tn.msg, "immediately") {
					detail += ", to an up-to-date member"
				} else {
					detail += fmt.Sprintf(", after catching %s up for %s", to, ms3(tn.ts.Sub(l.ts)))
				}
			}
			if sig, ok := stopStart[l.member]; ok && l.ts.Sub(sig) < stopLinger {
				detail += ", on " + l.member + "'s shutdown"
			}
			ev.transfers = append(ev.transfers, span{from: l.ts, to: end, subject: l.member + "→" + to, detail: detail})
		case strings.Contains(l.msg, " became leader at term "):
			if inAny(ev.transfers, l.ts) {
				continue
			}
			// The election began at the first sign of it in the 5 s before.
			from := l.ts
			for _, p := range logs.lines[:i] {
				if l.ts.Sub(p.ts) > 5*time.Second {
					continue
				}
				if strings.Contains(p.msg, "lost leader") || strings.Contains(p.msg, "is starting a new election") ||
					strings.Contains(p.msg, "became candidate") || strings.Contains(p.msg, "became pre-candidate") {
					from = p.ts
					break
				}
			}
			ev.elections = append(ev.elections, span{from: from, to: l.ts, subject: l.member,
				detail: fmt.Sprintf("%s became leader after %s", l.member, ms3(l.ts.Sub(from)))})
		case l.msg == "received signal; shutting down":
			stopStart[l.member] = l.ts
			detail := "SIGTERM at " + clock(l.ts)
			if after(logs.lines[i:], l.member, "skipped leadership transfer; local server is not leader", stopLinger) != nil {
				detail += ", not the leader"
			}
			ev.stops = append(ev.stops, span{from: l.ts, to: l.ts.Add(stopLinger), subject: l.member, detail: detail})
		case l.msg == "closed etcd server":
			for j := len(ev.stops) - 1; j >= 0; j-- {
				s := &ev.stops[j]
				if s.subject == l.member && !l.ts.Before(s.from) && l.ts.Sub(s.from) < stopLinger {
					s.to = l.ts
					s.detail += ", closed " + ms3(l.ts.Sub(s.from)) + " later"
					break
				}
			}
		case l.msg == "starting an etcd server":
			startStart[l.member] = l.ts
			// A member killed once it closed its data (the stop's
			// kill_when_unlocked) logs no "closed etcd server": its new
			// process ends the stop.
			for j := len(ev.stops) - 1; j >= 0; j-- {
				s := &ev.stops[j]
				if s.subject == l.member && l.ts.After(s.from) && l.ts.Before(s.to) {
					s.to = l.ts
					s.detail += ", gone by its restart " + ms3(l.ts.Sub(s.from)) + " later"
					break
				}
			}
		case l.msg == "serving client traffic insecurely; this is strongly discouraged!" || l.msg == "serving client traffic securely" ||
			l.msg == "ready to serve client requests":
			from, ok := startStart[l.member]
			if !ok {
				continue
			}
			// A member's first writes after its start still wait for it to
			// catch up: half a second more counts as its start.
			to := l.ts.Add(500 * time.Millisecond)
			if n := len(ev.starts); n > 0 && ev.starts[n-1].subject == l.member && ev.starts[n-1].from.Equal(from) {
				ev.starts[n-1].to = to
				continue
			}
			ev.starts = append(ev.starts, span{from: from, to: to, subject: l.member, detail: "serving clients from " + clock(l.ts)})
		}
	}
	return ev
}

// after is the first of lines (in time order) logged by member within d of
// the first line whose message contains part, or nil.
func after(lines []logLine, member, part string, d time.Duration) *logLine {
	if len(lines) == 0 {
		return nil
	}
	for i := range lines {
		l := &lines[i]
		if l.ts.Sub(lines[0].ts) > d {
			return nil
		}
		if l.member == member && strings.Contains(l.msg, part) {
			return l
		}
	}
	return nil
}

func inAny(spans []span, t time.Time) bool {
	for _, s := range spans {
		if !t.Before(s.from) && !t.After(s.to) {
			return true
		}
	}
	return false
}

// cause is why one write failed or was slow.
type cause struct {
	class   string
	subject string        // the member(s) it is about
	detail  string        // the same for every write of one event
	worst   time.Duration // for logged durations: the longest
	context string        // where the runbook was then
}

// key tells causes apart: a cluster event is one cause whatever step the
// runbook moved on to while it lasted; for the rest, the step is what
// tells one run of slow writes from the next.
func (c cause) key() string {
	switch c.class {
	case CauseTransfer, CauseElection, CauseStopping, CauseStarting:
		return c.class + "|" + c.subject + "|" + c.detail
	}
	return c.class + "|" + c.subject + "|" + c.detail + "|" + c.context
}

// Windows around a write in which a member's line counts for it: an event
// a little before it began (what made it wait began before it did), and a
// logged duration up to a little after it ended (etcd logs a slow fsync or
// apply when it is over).
const (
	eventLead = 200 * time.Millisecond
	logLag    = 100 * time.Millisecond
)

// classify finds the cause of the write that began at start and ended at
// end: the first that holds of a leader transfer, an election, a member
// stopping or starting, a slow fsync or apply, a late leader, and else the
// machine's own load.
func classify(start, end time.Time, logs *memberLogs, ev events, j *Journal) cause {
	c := cause{context: runbookContext(j, start)}
	from := start.Add(-eventLead)
	for _, g := range []struct {
		class string
		spans []span
		from  time.Time
	}{
		{CauseTransfer, ev.transfers, from}, {CauseElection, ev.elections, from},
		// A stop counts for the writes in flight while it went on, not
		// for those that began after the member had closed.
		{CauseStopping, ev.stops, start},
		{CauseStarting, ev.starts, from},
	} {
		for _, s := range g.spans {
			if s.overlaps(g.from, end) {
				c.class, c.subject, c.detail = g.class, s.subject, s.detail
				return c
			}
		}
	}
	var fsync, apply, heartbeat map[string]time.Duration
	note := func(m *map[string]time.Duration, member string, d time.Duration) {
		if *m == nil {
			*m = map[string]time.Duration{}
		}
		(*m)[member] = max((*m)[member], d)
	}
	for _, l := range logs.lines {
		if l.ts.Before(from) || l.ts.After(end.Add(logLag)) {
			continue
		}
		switch {
		case l.msg == "slow fdatasync" && !l.ts.Before(start):
			d, _ := time.ParseDuration(l.fields["took"])
			note(&fsync, l.member, d)
		case l.msg == "apply request took too long" && !l.ts.Before(start):
			d, _ := time.ParseDuration(l.fields["took"])
			note(&apply, l.member, d)
		case strings.HasPrefix(l.msg, "leader failed to send out heartbeat on time") && !l.ts.After(end):
			d, _ := time.ParseDuration(l.fields["exceeded-duration"])
			note(&heartbeat, l.member, d)
		}
	}
	for _, g := range []struct {
		class string
		m     map[string]time.Duration
	}{{CauseFsync, fsync}, {CauseApply, apply}, {CauseHeartbeat, heartbeat}} {
		if len(g.m) > 0 {
			c.class = g.class
			c.subject, c.worst = worstMember(g.m)
			return c
		}
	}
	c.class = CauseLoad
	return c
}

// worstMember is the member with the longest duration, and that duration.
func worstMember(m map[string]time.Duration) (string, time.Duration) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	best := names[0]
	for _, n := range names {
		if m[n] > m[best] {
			best = n
		}
	}
	return best, m[best]
}

// runbookContext says where the run was at t: before or after it, in which
// step on which host, or between steps.
func runbookContext(j *Journal, t time.Time) string {
	switch {
	case j == nil:
		return ""
	case t.Before(j.Started):
		return "before the runbook started"
	case !j.Ended.IsZero() && t.After(j.Ended):
		return "after the runbook ended"
	}
	if s := j.At(t); s != nil {
		return fmt.Sprintf("runbook at %q on %s", s.Step, s.Host)
	}
	if s := j.Before(t); s != nil {
		return fmt.Sprintf("runbook just after %q on %s", s.Step, s.Host)
	}
	return "runbook between steps"
}

// text is the one-line reason of a cause.
func (c cause) text() string {
	switch c.class {
	case CauseTransfer:
		return fmt.Sprintf("during leader transfer %s (%s): proposals are dropped until the new leader leads", c.subject, c.detail)
	case CauseElection:
		return fmt.Sprintf("during a leader election (%s)", c.detail)
	case CauseStopping:
		return fmt.Sprintf("%s stopping (%s)", c.subject, c.detail)
	case CauseStarting:
		return fmt.Sprintf("%s starting (%s)", c.subject, c.detail)
	case CauseFsync:
		return fmt.Sprintf("WAL fsync %s on %s", ms3(c.worst), c.subject)
	case CauseApply:
		return fmt.Sprintf("apply took too long: %s on %s", ms3(c.worst), c.subject)
	case CauseHeartbeat:
		return fmt.Sprintf("leader %s late with heartbeats by up to %s: it was starved of CPU or disk", c.subject, ms3(c.worst))
	}
	return "no stop, election or warning in any member's log: the machine's own load"
}

// segment is a run of failed or slow writes with one cause.
type segment struct {
	cause
	from, to     time.Time
	failed, slow int
	slowest      float64
	errs         map[string]int
	served       map[string]bool
	steps        map[string]time.Duration // etcd's slowest step of the writes it traced → its longest
}

// Explain prints one line for each run of failed or slow writes in r with
// one cause, found in the members' logs (logs are name=path) and, when j is
// not nil, the runbook's journal; then the writes by cause, and each member
// outage the report's watch saw.
func Explain(r *Report, logs []string, j *Journal, w io.Writer) error {
	ml := &memberLogs{ids: map[string]string{}, puts: map[string]*putTrace{}}
	for _, spec := range logs {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("%q is not name=path, like m1=.runbook/lab/members/m1/etcd.log", spec)
		}
		if err := readLog(name, path, ml); err != nil {
			return err
		}
	}
	sortLines(ml)
	ev := findEvents(ml)

	type write struct {
		Failure
		failed bool
	}
	var writes []write
	for _, f := range r.Failures {
		writes = append(writes, write{f, true})
	}
	for _, s := range r.SlowWrites {
		writes = append(writes, write{s, false})
	}
	sort.SliceStable(writes, func(a, b int) bool { return writes[a].Started.Before(writes[b].Started) })

	var segs []*segment
	for _, wr := range writes {
		end := wr.Started.Add(dur(wr.LatencyMS))
		c := classify(wr.Started, end, ml, ev, j)
		// A write joins the latest run of writes with its cause unless a
		// second passed without one: writes with other causes in between
		// (a busy machine makes some of every cluster event) do not split it.
		var s *segment
		for i := len(segs) - 1; i >= 0 && s == nil; i-- {
			if segs[i].key() == c.key() && wr.Started.Sub(segs[i].to) < time.Second {
				s = segs[i]
				s.worst = max(s.worst, c.worst)
			}
		}
		if s == nil {
			s = &segment{cause: c, from: wr.Started, errs: map[string]int{}, served: map[string]bool{}, steps: map[string]time.Duration{}}
			segs = append(segs, s)
		}
		if end.After(s.to) {
			s.to = end
		}
		s.slowest = max(s.slowest, wr.LatencyMS)
		if wr.failed {
			s.failed++
			s.errs[shortError(wr.Error)]++
		} else {
			s.slow++
		}
		if wr.Seq > 0 && r.Prefix != "" {
			if pt := ml.puts[Config{Prefix: r.Prefix}.Key(wr.Seq)]; pt != nil {
				s.served[pt.member] = true
				if pt.step != "" {
					s.steps[pt.step] = max(s.steps[pt.step], pt.took)
				}
			}
		}
	}

	if len(segs) == 0 {
		fmt.Fprintf(w, "no failed write and none slower than %s\n", SlowWrite)
	}
	for _, s := range segs {
		fmt.Fprintf(w, "%s–%s  %d failed, %d slow (slowest %.0f ms)  [%s] %s", clock(s.from), clock(s.to), s.failed, s.slow, s.slowest, s.class, s.text())
		if len(s.served) > 0 {
			fmt.Fprintf(w, "; served by %s", strings.Join(sortedKeys(s.served), ", "))
			for _, st := range sortedKeys(s.steps) {
				fmt.Fprintf(w, ", etcd's slowest step %q", st)
			}
		}
		if s.context != "" {
			fmt.Fprintf(w, "; %s", s.context)
		}
		if len(s.errs) > 0 {
			var es []string
			for _, e := range sortedKeys(s.errs) {
				es = append(es, fmt.Sprintf("%d× %s", s.errs[e], e))
			}
			fmt.Fprintf(w, "; errors: %s", strings.Join(es, ", "))
			if s.class == CauseTransfer && s.errs["context deadline exceeded"] > 0 {
				// raft drops a proposal a follower forwards to a leader that is
				// handing over without telling the follower: its client waits
				// for its own timeout.
				fmt.Fprint(w, " (a timeout: a follower forwarded the write to the old leader, which dropped it)")
			}
		}
		fmt.Fprintln(w)
	}
	if len(segs) > 0 {
		byClass := map[string]*segment{}
		for _, s := range segs {
			b := byClass[s.class]
			if b == nil {
				b = &segment{}
				byClass[s.class] = b
			}
			b.failed += s.failed
			b.slow += s.slow
			b.slowest = max(b.slowest, s.slowest)
		}
		for _, c := range sortedKeys(byClass) {
			b := byClass[c]
			fmt.Fprintf(w, "cause %s: %d failed, %d slow, slowest %.0f ms\n", c, b.failed, b.slow, b.slowest)
		}
		if int64(len(r.Failures)) < r.Writes.Failed || int64(len(r.SlowWrites)) < r.Writes.Slow {
			fmt.Fprintf(w, "(the report lists %d of %d failed and %d of %d slow writes one by one; the others are not explained)\n",
				len(r.Failures), r.Writes.Failed, len(r.SlowWrites), r.Writes.Slow)
		}
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

// shortError drops the gRPC wrapping of an error, which says nothing a
// reader needs: "rpc error: code = Unknown desc = raft proposal dropped".
func shortError(e string) string {
	if i := strings.Index(e, " desc = "); i >= 0 && strings.HasPrefix(e, "rpc error: ") {
		return e[i+len(" desc = "):]
	}
	return e
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ms3 prints a duration in whole milliseconds.
func ms3(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }
