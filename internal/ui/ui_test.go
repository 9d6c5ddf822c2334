package ui

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/event"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"ünïcode ✓", "ünïcode ✓"},
		{"two\nlines\n", `two\nlines`},
		{"crlf\r\nline", `crlf\nline`},
		{"bare\rreturn", `bare\x0dreturn`},
		{"\x1b[2J\x1b[Hcleared", `\x1b[2J\x1b[Hcleared`},
		{"tab\there", "tab here"},
		{"bell\a", `bell\x07`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bad \xff byte", `bad \xff byte`},
		{"trailing   \n\n", "trailing"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0ms"},
		{-time.Second, "0ms"},
		{10 * time.Millisecond, "10ms"},
		{999 * time.Millisecond, "999ms"},
		{time.Second, "1s"},
		{1240 * time.Millisecond, "1.2s"},
		{1250 * time.Millisecond, "1.3s"},
		{59940 * time.Millisecond, "59.9s"},
		{59960 * time.Millisecond, "1m0s"},
		{95 * time.Second, "1m35s"},
		{2*time.Hour + 3*time.Second, "2h0m3s"},
	}
	for _, tt := range tests {
		if got := duration(tt.in); got != tt.want {
			t.Errorf("duration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	red := "\x1b[31m✗\x1b[0m"
	tests := []struct {
		name  string
		in    string
		n     int
		color bool
		want  string
	}{
		{"fits", "abc", 3, false, "abc"},
		{"cut", "abcdef", 4, false, "abc…"},
		{"runes count once", "ééééé", 3, false, "éé…"},
		{"escapes count none", red + " host", 6, true, red + " host"},
		{"cut after colour", red + " hostname", 5, true, red + " ho…" + reset},
		{"cut inside colour", "\x1b[2mlong dim text\x1b[0m", 5, true, "\x1b[2mlong…" + reset},
		{"trailing reset only", "abc" + reset, 3, true, "abc" + reset},
		{"no room", "abc", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := truncate(tt.in, tt.n, tt.color); got != tt.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestLogger(t *testing.T) {
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d INF member caught up host=etcd-1\n$`)
	t.Run("buffer", func(t *testing.T) {
		t.Setenv("NO_COLOR", "")
		var buf bytes.Buffer
		log := Logger(&buf, zerolog.InfoLevel)
		log.Debug().Msg("not shown at info")
		log.Info().Str("host", "etcd-1").Msg("member caught up")
		if !line.MatchString(buf.String()) {
			t.Errorf("a writer that is not a terminal gets plain lines at the level asked:\n%q", buf.String())
		}
	})
	t.Run("debug", func(t *testing.T) {
		var buf bytes.Buffer
		log := Logger(&buf, zerolog.DebugLevel)
		log.Debug().Msg("dialing")
		if !strings.Contains(buf.String(), "DBG dialing") {
			t.Errorf("debug line missing: %q", buf.String())
		}
	})
	for _, tt := range []struct {
		name    string
		color   bool
		noColor string
		want    bool
	}{
		{"live with colour", true, "", true},
		{"live under NO_COLOR", true, "1", false},
		{"live without colour", false, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			r := newRig(t, LiveOptions{Color: tt.color, Width: 100, Height: 20})
			log := Logger(r.l.LogWriter(), zerolog.InfoLevel)
			r.emit(0, hostStart(1, "etcd-1"))
			r.frame(time.Second)
			log.Info().Str("host", "etcd-1").Msg("member caught up")
			f := r.frame(2 * time.Second)
			logLine := strings.SplitAfter(strings.TrimPrefix(f, "\x1b[1A\x1b[J"), "\n")[0]
			if got := sgr.MatchString(logLine); got != tt.want {
				t.Errorf("colour in the log line: %v, want %v: %q", got, tt.want, logLine)
			}
			if !line.MatchString(sgr.ReplaceAllString(logLine, "")) {
				t.Errorf("the log line does not come before the live area: %q", f)
			}
			r.close()
			// After Close, log lines go straight to the writer, after the final state.
			log.Info().Str("host", "etcd-1").Msg("member caught up")
			if rest := r.out.String()[r.seen:]; rest != logLine {
				t.Errorf("log after Close: %q, want %q", rest, logLine)
			}
		})
	}
}

// TestRecapAcrossResume checks that a resumed run's recap counts the hosts of
// every part and reports the last part's end.
func TestRecapAcrossResume(t *testing.T) {
	first := cat(
		one(runStart(hosts3, batches3, false), batchStart(1, "etcd-1"), hostStart(1, "etcd-1")),
		runSteps(1, "etcd-1"),
		one(hostEnd(1, "etcd-1", event.Changed, 0, ""), batchEnd(1, event.OK, 0, ""),
			event.Event{Kind: event.Interrupt, Error: "interrupted"},
			runEnd(event.Interrupted, 3, time.Minute, "interrupted by the operator", nil)),
	)
	info := event.RunInfo{Runbook: "upgrade-etcd.yml", Hosts: hosts3, Batches: batches3, Steps: 4}
	second := cat(
		one(event.Event{Kind: event.RunResume, Data: info.Data()}, batchStart(2, "etcd-2", "etcd-3"),
			hostStart(2, "etcd-2"), hostStart(2, "etcd-3")),
		runSteps(2, "etcd-2"), runSteps(2, "etcd-3"),
		one(hostEnd(2, "etcd-2", event.Changed, 0, ""), hostEnd(2, "etcd-3", event.OK, 0, ""),
			batchEnd(2, event.OK, 0, ""), runEnd(event.OK, 0, time.Minute, "", nil)),
	)
	evs := stamp(t, cat(first, second))
	live := NewRecap()
	for _, e := range evs {
		if err := live.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	var a, b bytes.Buffer
	if err := RecapOf(evs).Print(&a); err != nil {
		t.Fatal(err)
	}
	if err := live.Print(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("RecapOf and Emit disagree:\n%s\n%s", a.String(), b.String())
	}
	out := a.String()
	if !strings.Contains(out, "run "+runID+": 3 hosts ok, 0 failed — exit 0\n") || strings.Contains(out, "interrupt") {
		t.Errorf("recap of a resumed run:\n%s", out)
	}
	if n := strings.Count(out, "etcd-"); n != 3 {
		t.Errorf("each host once, got %d rows:\n%s", n, out)
	}
}
