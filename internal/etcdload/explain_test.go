package etcdload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fixtures under testdata/explain are from one run of make
// bench-upgrade (the runbook way) on a busy machine, cut down to the lines
// around a few of its slow writes and its two failed ones: the members'
// logs, the load's report and the runbook's journal.
func TestExplainRealRun(t *testing.T) {
	dir := filepath.Join("testdata", "explain")
	r, err := ReadReport(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := ReadJournal(filepath.Join(dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, m := range []string{"m1", "m2", "m3"} {
		logs = append(logs, m+"="+filepath.Join(dir, m+".log"))
	}
	var out bytes.Buffer
	if err := Explain(r, logs, j, &out); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("explain", "explain.golden"), out.String())
}

func TestExplainCommand(t *testing.T) {
	dir := filepath.Join("testdata", "explain")
	logs := "m1=" + filepath.Join(dir, "m1.log") + ",m2=" + filepath.Join(dir, "m2.log") + ",m3=" + filepath.Join(dir, "m3.log")
	code, stdout, stderr := runMain(t, "-report-from", filepath.Join(dir, "report.json"), "-explain-logs", logs,
		"-journal", filepath.Join(dir, "journal.jsonl"))
	if code != ExitOK || !strings.Contains(stdout, `[leader-transfer] during leader transfer m1→m2`) ||
		!strings.Contains(stdout, `runbook at "hand leadership to an upgraded member" on m1`) {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"journal without logs", []string{"-report-from", filepath.Join(dir, "report.json"), "-journal", filepath.Join(dir, "journal.jsonl")},
			"-journal goes with -explain-logs"},
		{"not a journal", []string{"-report-from", filepath.Join(dir, "report.json"), "-explain-logs", logs, "-journal", filepath.Join(dir, "m1.log")},
			"holds no runbook journal event"},
		{"missing journal", []string{"-report-from", filepath.Join(dir, "report.json"), "-explain-logs", logs, "-journal", filepath.Join(dir, "none.jsonl")},
			"-journal: open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}

// TestClassify gives each cause its own small log: the first rule that
// holds wins, in the order transfer, election, stop, start, fsync, apply,
// heartbeat, and else the machine's load.
func TestClassify(t *testing.T) {
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(ms int) string { return base.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano) }
	line := func(ms int, level, msg, extra string) string {
		s := `{"level":"` + level + `","ts":"` + at(ms) + `","msg":"` + msg + `"`
		if extra != "" {
			s += "," + extra
		}
		return s + "}\n"
	}
	ids := line(-5000, "info", "aaaaaaaaaaaaaaaa became follower at term 2", "")
	ids2 := line(-5000, "info", "bbbbbbbbbbbbbbbb became follower at term 2", "")
	tests := []struct {
		name       string
		m1, m2     string
		start, end int // the write, in ms from base
		class      string
		text       string
	}{
		{"transfer", ids + line(10, "info", "aaaaaaaaaaaaaaaa [term 2] starts to transfer leadership to bbbbbbbbbbbbbbbb", "") +
			line(10, "info", "aaaaaaaaaaaaaaaa sends MsgTimeoutNow to bbbbbbbbbbbbbbbb immediately as bbbbbbbbbbbbbbbb already has up-to-date log", ""),
			ids2 + line(18, "info", "bbbbbbbbbbbbbbbb became leader at term 3", ""),
			0, 2000, CauseTransfer, "during leader transfer m1→m2 (m2 led 8 ms later, to an up-to-date member)"},
		{"transfer to a member behind", ids + line(10, "info", "aaaaaaaaaaaaaaaa [term 2] starts to transfer leadership to bbbbbbbbbbbbbbbb", "") +
			line(13, "info", "aaaaaaaaaaaaaaaa sent MsgTimeoutNow to bbbbbbbbbbbbbbbb after received MsgAppResp", ""),
			ids2 + line(18, "info", "bbbbbbbbbbbbbbbb became leader at term 3", ""),
			0, 2000, CauseTransfer, "(m2 led 8 ms later, after catching m2 up for 3 ms)"},
		{"transfer on shutdown", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) +
			line(5, "info", "leadership transfer starting", `"transferee-member-id":"bbbbbbbbbbbbbbbb"`),
			ids2 + line(20, "info", "bbbbbbbbbbbbbbbb became leader at term 3", ""),
			10, 120, CauseTransfer, "(m2 led 15 ms later, on m1's shutdown)"},
		{"election", ids + line(100, "info", "raft.node: aaaaaaaaaaaaaaaa lost leader cccccccccccccccc at term 3", ""),
			ids2 + line(1100, "info", "bbbbbbbbbbbbbbbb became leader at term 4", ""),
			500, 1200, CauseElection, "m2 became leader after 1000 ms"},
		{"stop", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) + line(800, "info", "closed etcd server", ""),
			"", 100, 300, CauseStopping, "m1 stopping (SIGTERM at 12:00:00.000, closed 800 ms later)"},
		{"stop of a follower", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) +
			line(20, "info", "skipped leadership transfer; local server is not leader", "") + line(800, "info", "closed etcd server", ""),
			"", 100, 300, CauseStopping, "m1 stopping (SIGTERM at 12:00:00.000, not the leader, closed 800 ms later)"},
		{"stop killed, then restarted", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) +
			line(300, "info", "starting an etcd server", ""),
			"", 100, 200, CauseStopping, "m1 stopping (SIGTERM at 12:00:00.000, gone by its restart 300 ms later)"},
		{"after a killed stop and a restart", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) +
			line(300, "info", "starting an etcd server", "") + line(400, "info", "ready to serve client requests", ""),
			"", 1200, 1300, CauseLoad, "the machine's own load"},
		{"stop long ago", ids + line(0, "info", "received signal; shutting down", `"signal":"terminated"`) + line(800, "info", "closed etcd server", ""),
			"", 1500, 1700, CauseLoad, "the machine's own load"},
		{"start", "", ids2 + line(0, "info", "starting an etcd server", "") + line(300, "info", "ready to serve client requests", ""),
			600, 750, CauseStarting, "m2 starting (serving clients from 12:00:00.300)"},
		{"fsync", line(150, "warn", "slow fdatasync", `"took":"230ms","expected-duration":"1s"`), "",
			0, 160, CauseFsync, "WAL fsync 230 ms on m1"},
		{"fsync logged before the write", line(-10, "warn", "slow fdatasync", `"took":"230ms","expected-duration":"1s"`), "",
			0, 160, CauseLoad, ""},
		{"apply", "", line(140, "warn", "apply request took too long", `"took":"131ms","expected-duration":"100ms"`),
			0, 150, CauseApply, "apply took too long: 131 ms on m2"},
		{"apply beats heartbeat", line(50, "warn", "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk", `"exceeded-duration":"40ms"`),
			line(140, "warn", "apply request took too long", `"took":"131ms"`),
			0, 150, CauseApply, "on m2"},
		{"heartbeat", line(50, "warn", "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk", `"exceeded-duration":"40ms"`),
			"", 0, 150, CauseHeartbeat, "leader m1 late with heartbeats by up to 40 ms"},
		{"nothing", line(50, "info", "applied entries", ""), "", 0, 150, CauseLoad, "no stop, election or warning in any member's log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p1, p2 := filepath.Join(dir, "m1.log"), filepath.Join(dir, "m2.log")
			if err := os.WriteFile(p1, []byte(tt.m1), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p2, []byte(tt.m2), 0o644); err != nil {
				t.Fatal(err)
			}
			ml := &memberLogs{ids: map[string]string{}, puts: map[string]*putTrace{}}
			if err := readLog("m1", p1, ml); err != nil {
				t.Fatal(err)
			}
			if err := readLog("m2", p2, ml); err != nil {
				t.Fatal(err)
			}
			sortLines(ml)
			c := classify(base.Add(time.Duration(tt.start)*time.Millisecond), base.Add(time.Duration(tt.end)*time.Millisecond), ml, findEvents(ml), nil)
			if c.class != tt.class || !strings.Contains(c.text(), tt.text) {
				t.Errorf("cause [%s] %s; want [%s] with %q", c.class, c.text(), tt.class, tt.text)
			}
		})
	}
}

func TestExplainGroupsAndContext(t *testing.T) {
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	log := filepath.Join(dir, "m1.log")
	lines := `{"level":"info","ts":"2026-11-24T12:00:01.900Z","msg":"received signal; shutting down","signal":"terminated"}
{"level":"info","ts":"2026-11-24T12:00:02.500Z","msg":"closed etcd server"}
{"level":"info","ts":"2026-11-24T12:00:05.000Z","caller":"traceutil/trace.go:172","msg":"trace[1] put","detail":"{key:/load/000000000009; req_size:55; response_revision:98; }","duration":"150ms","steps":["trace[1] 'process raft request'  (duration: 149ms)"]}
not json
`
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "run.jsonl")
	events := `{"time":"2026-11-24T12:00:01Z","kind":"run_start"}
{"time":"2026-11-24T12:00:01.5Z","kind":"step_start","phase":"steps","host":"m1","step":"stop etcd"}
{"time":"2026-11-24T12:00:02.6Z","kind":"step_end","phase":"steps","host":"m1","step":"stop etcd","status":"changed"}
{"time":"2026-11-24T12:00:06Z","kind":"run_end","status":"ok"}
{"time":"2026-11-24T12:00:06.1Z","kind":"step_start"
`
	if err := os.WriteFile(journal, []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := ReadJournal(journal)
	if err != nil {
		t.Fatal(err)
	}
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	r := &Report{
		Prefix: "/load/",
		Writes: Counts{Failed: 2, Slow: 2},
		Failures: []Failure{
			{Seq: 3, Started: ms(2000), LatencyMS: 5, Error: "rpc error: code = Unavailable desc = error reading from server: EOF"},
			{Seq: 4, Started: ms(2010), LatencyMS: 5, Error: "rpc error: code = Unavailable desc = error reading from server: EOF"},
		},
		SlowWrites: []Failure{{Seq: 1, Started: ms(500), LatencyMS: 120}, {Seq: 9, Started: ms(4850), LatencyMS: 150}},
		Members: []MemberOutages{{Endpoint: "http://127.0.0.11:2379", Outages: []Outage{
			{From: ms(1900), To: ms(3000), MS: 1100, Seen: "no answer"}}}},
	}
	var out bytes.Buffer
	if err := Explain(r, []string{"m1=" + log}, j, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"12:00:00.500–12:00:00.620  0 failed, 1 slow (slowest 120 ms)  [machine-load] no stop, election or warning in any member's log: the machine's own load; before the runbook started\n",
		"12:00:02.000–12:00:02.015  2 failed, 0 slow (slowest 5 ms)  [member-stopping] m1 stopping (SIGTERM at 12:00:01.900, closed 600 ms later); runbook at \"stop etcd\" on m1; errors: 2× error reading from server: EOF\n",
		"12:00:04.850–12:00:05.000  0 failed, 1 slow (slowest 150 ms)  [machine-load] no stop, election or warning in any member's log: the machine's own load; served by m1, etcd's slowest step \"process raft request\"; runbook just after \"stop etcd\" on m1\n",
		"cause member-stopping: 2 failed, 0 slow, slowest 5 ms\n",
		"outage of http://127.0.0.11:2379: 12:00:01.900 – 12:00:03.000 (1100 ms), first seen: no answer\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explanation:\n%s\nwant the line %q", out.String(), want)
		}
	}
	if err := Explain(r, []string{"m1"}, nil, &out); err == nil {
		t.Error("a log without its member's name was taken")
	}
}
