package ui

import (
	"fmt"
	"strconv"

	"github.com/runbookhq/runbook/internal/event"
)

// approvalLine describes the events of approvals and change windows, for the
// plain and the live views alike; ok is false for other kinds.
func approvalLine(e event.Event) (line string, ok bool) {
	who := join(clean(e.Host), stepQuoted(e))
	switch e.Kind {
	case event.ApprovalWait:
		return withError(who+" waits for approval", e), true
	case event.Approval:
		d := func(k string) string { s, _ := e.Data[k].(string); return clean(s) }
		switch d("decision") {
		case "":
			return withError(who+" approvals", e), true
		case "timeout":
			return withError(who+" approval timed out", e), true
		}
		s := fmt.Sprintf("%s %s by %s", who, d("decision"), d("user"))
		if c := d("controller"); c != "" {
			s += " on " + c
		}
		if r := clean(e.Reason); r != "" {
			s += ": " + strconv.Quote(r)
		}
		if counted, _ := e.Data["counted"].(bool); !counted && d("decision") == "approved" {
			s += " (not counted)"
		}
		return withError(s, e), true
	case event.Window:
		if e.Ignored {
			return "change window ignored (--ignore-window): " + strconv.Quote(clean(e.Reason)), true
		}
		return withError(join(who, "change window"), e), true
	}
	return "", false
}

func stepQuoted(e event.Event) string {
	if e.Step == "" {
		return ""
	}
	return "step " + strconv.Quote(clean(e.Step))
}
