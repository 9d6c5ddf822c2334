package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/journal"
)

// hostile is a journal whose names and messages look like markup, and whose
// last step never ended (the process died while it ran).
const hostile = `{"seq":1,"time":"2026-12-07T10:00:00Z","run_id":"R1","kind":"run_start","data":{"runbook":"rb.yml","name":"x<b>y","hosts":["h<i>1"],"batches":[["h<i>1"]]}}
{"seq":2,"time":"2026-12-07T10:00:01Z","run_id":"R1","kind":"batch_start","batch":1,"data":{"hosts":["h<i>1"]}}
{"seq":3,"time":"2026-12-07T10:00:01Z","run_id":"R1","kind":"host_start","batch":1,"host":"h<i>1"}
{"seq":4,"time":"2026-12-07T10:00:01Z","run_id":"R1","kind":"step_start","batch":1,"host":"h<i>1","step":"<script>alert(1)</script>","data":{"module":"shell"}}
{"seq":5,"time":"2026-12-07T10:00:02Z","run_id":"R1","kind":"step_end","batch":1,"host":"h<i>1","step":"<script>alert(1)</script>","status":"failed","error":"</pre><img src=x onerror=alert(2)> | ` + "```" + ` [a](javascript:x) \u0001"}
{"seq":6,"time":"2026-12-07T10:00:02Z","run_id":"R1","kind":"rejected","host":"h<i>1","step":"gate","data":{"user":"<u>eve</u>","reason":"no & never"}}
{"seq":7,"time":"2026-12-07T10:00:03Z","run_id":"R1","kind":"step_start","batch":1,"host":"h<i>1","step_index":1,"step":"in flight"}
`

func TestHostileText(t *testing.T) {
	st, err := journal.Replay(strings.NewReader(hostile))
	if err != nil {
		t.Fatal(err)
	}
	r := Build(st, "")
	if r.Result != "crashed" || len(r.Approvals) != 1 || r.Approvals[0].Decision != "rejected" || r.Approvals[0].User != "<u>eve</u>" {
		t.Fatalf("report = %s, approvals %+v; want crashed and eve's rejection", r.Result, r.Approvals)
	}
	write := func(format string) string {
		var b bytes.Buffer
		if err := r.Write(&b, format); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	html := write("html")
	for _, bad := range []string{"<script", "<img", "<b>y", "<u>eve", "</pre><"} {
		if strings.Contains(html, bad) {
			t.Errorf("html holds %q unescaped", bad)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("html does not show the step's name as text")
	}

	md := write("markdown")
	for _, bad := range []string{"<script", "<img", "<u>", "[a](javascript"} {
		if strings.Contains(outsideCode(md), bad) {
			t.Errorf("markdown holds %q outside code", bad)
		}
	}

	junit := write("junit")
	var doc junitSuites
	if err := xml.Unmarshal([]byte(junit), &doc); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, junit)
	}
	if doc.Tests != 2 || doc.Failures != 1 || doc.Errors != 1 {
		t.Errorf("junit counts tests=%d failures=%d errors=%d, want 2, 1 and 1 (the step that never ended)", doc.Tests, doc.Failures, doc.Errors)
	}

	js := write("json")
	if !strings.Contains(js, `"status": "never_ended"`) {
		t.Error("json does not mark the step in flight as never_ended")
	}
}

// outsideCode is md without its fenced blocks and code spans: the text
// markdown would read as markup.
func outsideCode(md string) string {
	var out []string
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case fence != "":
			if t == fence {
				fence = ""
			}
			continue
		case strings.HasPrefix(t, "```"):
			fence = strings.TrimRight(t, "abcdefghijklmnopqrstuvwxyz")
			continue
		}
		out = append(out, withoutSpans(line))
	}
	return strings.Join(out, "\n")
}

// withoutSpans drops the code spans of a line: a run of n backticks up to
// the next run of exactly n, as CommonMark reads them.
func withoutSpans(line string) string {
	var out strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			out.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		end := -1
		for j := i + n; j < len(line); {
			if line[j] != '`' {
				j++
				continue
			}
			m := 0
			for j+m < len(line) && line[j+m] == '`' {
				m++
			}
			if m == n {
				end = j + m
				break
			}
			j += m
		}
		if end < 0 {
			out.WriteString(line[i : i+n])
			i += n
			continue
		}
		i = end
	}
	return out.String()
}
