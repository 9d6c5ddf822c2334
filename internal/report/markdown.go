package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/journal"
)

// WriteMarkdown writes the report for a pull request or a change ticket: the
// summary, who approved what, a step table per host with times, the
// failures with their messages, the rollback, the gates' metric values, the
// recap and the plan's Mermaid flow. Text from the journal is escaped, so a
// step name or an error cannot become markup.
func (r *Report) WriteMarkdown(w io.Writer) error {
	ew := &errWriter{w: w}
	p := func(format string, args ...any) { fmt.Fprintf(ew, format, args...) }

	p("# Run %s: %s\n\n", md(r.RunID), md(r.Runbook))
	p("| | |\n| --- | --- |\n")
	p("| run | `%s` |\n", r.RunID)
	p("| runbook | %s (%s) |\n", md(r.Runbook), md(r.File))
	if r.Inventory != "" {
		p("| inventory | %s |\n", md(r.Inventory))
	}
	if r.User != "" {
		p("| user | %s |\n", md(r.User))
	}
	p("| started | %s |\n", stamp(r.Started))
	for _, t := range r.Resumed {
		p("| resumed | %s |\n", stamp(t))
	}
	if r.Ended != nil {
		p("| ended | %s (%s) |\n", stamp(*r.Ended), dur(r.Ended.Sub(r.Started).Milliseconds()))
	}
	p("| result | **%s** |\n", md(r.Result))
	if r.ExitCode != nil {
		p("| exit code | %d |\n", *r.ExitCode)
	}
	if r.Check {
		p("| mode | check (nothing changed) |\n")
	}
	if r.Reason != "" {
		p("| reason | %s |\n", md(r.Reason))
	}
	if r.AbortReason != "" && r.AbortReason != r.Reason {
		p("| aborted | %s |\n", md(r.AbortReason))
	}
	if r.Lock != nil {
		p("| run lock | %s (%s) |\n", md(strings.Join(r.Lock.Keys, ", ")), md(r.Lock.Store))
	}

	p("\n## Approvals\n\n")
	if len(r.Approvals) == 0 {
		p("No approval gate was reached.\n")
	} else {
		p("| time | gate | host | step | decision | by | detail |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, a := range r.Approvals {
			p("| %s | %s | %s | %s | %s | %s | %s |\n", clock(a.Time), md(a.Kind), md(a.Host), md(a.Step),
				md(a.Decision), md(a.User), md(a.Detail))
		}
	}

	p("\n## Hosts\n")
	for _, h := range r.Hosts {
		p("\n### %s: %s\n\n", md(h.Name), md(h.Status))
		if len(h.Steps) == 0 {
			p("No step ran on this host.\n")
			continue
		}
		r.stepTable(ew, h.Steps)
	}
	if len(r.Controller) > 0 {
		p("\n### Controller (preflight, gates, post)\n\n")
		r.stepTable(ew, r.Controller)
	}

	p("\n## Failures\n\n")
	if len(r.Failures) == 0 {
		p("None.\n")
	}
	for _, f := range r.Failures {
		where := f.Host
		if where == "" {
			where = "run"
		}
		if f.Step != "" {
			where += ", step " + f.Step
		}
		if f.Phase == "rollback" {
			where += " (rollback)"
		}
		p("- **%s** at %s: %s\n", md(where), clock(f.Time), md(f.Status))
		if f.Message != "" {
			p("\n%s\n", indent(fenced(f.Message, ""), "  "))
		}
	}

	p("\n## Rollback\n\n")
	rolled := false
	for _, h := range r.Hosts {
		if len(h.Rollback) == 0 {
			continue
		}
		rolled = true
		p("**%s** (%s):\n\n", md(h.Name), md(h.Status))
		r.stepTable(ew, h.Rollback)
		p("\n")
	}
	if !rolled {
		p("No host was rolled back.\n")
	}

	if len(r.Metrics) > 0 {
		p("\n## Metric gates\n\n| time | host | step | status | url | values |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, m := range r.Metrics {
			for _, url := range sortedKeys(m.Values) {
				p("| %s | %s | %s | %s | %s | %s |\n", clock(m.Time), md(m.Host), md(m.Step), md(m.Status), md(url), mdCode(values(m.Values[url])))
			}
		}
	}
	if len(r.Analyses) > 0 {
		p("\n## Analyses\n")
		for _, a := range r.Analyses {
			where := a.Step
			if a.Host != "" {
				where = a.Host + ", " + where
			}
			p("\n**%s**: %s (step %s)\n\n", md(where), md(a.Verdict), md(a.Status))
			p("| time | metric | # | value | baseline | verdict | detail |\n| --- | --- | --- | --- | --- | --- | --- |\n")
			for _, m := range a.Metrics {
				for _, ms := range m.Measurements {
					p("| %s | %s | %d | %s | %s | %s | %s |\n", clock(ms.Time), md(m.Name), ms.N, md(journal.Measured(ms.Value)),
						md(journal.Measured(ms.Baseline)), md(ms.Verdict), mdCode(ms.Detail))
				}
			}
			for _, m := range a.Metrics {
				if m.Message != "" {
					p("\n- %s: %s\n", md(m.Name), md(m.Message))
				}
			}
		}
	}
	if len(r.Notices) > 0 {
		p("\n## Notices\n\n")
		for _, n := range r.Notices {
			on := ""
			if n.Host != "" {
				on = " on " + md(n.Host)
			}
			p("- %s %s%s: %s\n", clock(n.Time), md(n.Kind), on, md(n.Message))
		}
	}

	p("\n## Recap\n\n%s\n", fenced(r.Recap, ""))
	p("\n## Plan\n\n")
	if r.Flow == "" {
		p("The journal does not hold the plan's flow (a run recorded before reports had it).\n")
	} else {
		p("%s\n", fenced(r.Flow, "mermaid"))
	}
	if r.Torn != nil {
		p("\n> The journal's line %d was cut short by a crash; its %d bytes are left out.\n", r.Torn.Line, r.Torn.Bytes)
	}
	return ew.err
}

func (r *Report) stepTable(w io.Writer, steps []Step) {
	fmt.Fprintf(w, "| # | step | module | status | started | duration | attempts | error |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range steps {
		started := "-"
		if s.Started != nil {
			started = clock(*s.Started)
		}
		name := strings.TrimPrefix(caseName(s), fmt.Sprintf("%d. ", s.Index+1))
		status := s.Status
		if s.Changed && status != "changed" {
			status += ", changed"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %d | %s |\n", s.Index+1, md(name), md(s.Module), md(status),
			started, dur(s.DurationMS), max(s.Attempts, 1), mdCode(s.Error))
	}
}

// md escapes text for a markdown table cell or a line: markup characters
// are backslash-escaped, HTML is entity-escaped and a line break becomes a
// space, so text from the journal is shown as it is and never as markup.
func md(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '`', '*', '_', '[', ']', '(', ')', '#', '|', '!', '~':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// mdCode shows text as inline code in a table cell: nothing in it is
// markup, only the cell's | needs its escape, and the span's backticks
// outnumber any run inside it.
func mdCode(s string) string {
	s = strings.TrimSpace(strings.Join(strings.Fields(s), " "))
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

func longestRun(s string, r rune) int {
	longest, run := 0, 0
	for _, c := range s {
		if c == r {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// fenced puts text in a code block whose fence is longer than any run of
// backticks inside it, so nothing in it can close the block.
func fenced(text, lang string) string {
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	return fence + lang + "\n" + strings.TrimRight(text, "\n") + "\n" + fence
}

func indent(s, by string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}

// dur shows milliseconds under a minute and seconds above, as `runbook show`.
func dur(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// values shows what a gate read as name=value words, sorted by name.
func values(m map[string]any) string {
	var words []string
	for _, k := range sortedKeys(m) {
		words = append(words, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(words, ", ")
}

// errWriter keeps the first write error, so the printing code stays readable.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
