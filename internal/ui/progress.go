package ui

import (
	"fmt"
	"strconv"
)

// progressText says what a step_progress event reports: for an analysis'
// measurement "error-rate #2: 0.012 (baseline 0.01) successful"; for
// another step its message, if any.
func progressText(d map[string]any) string {
	metric, ok := d["metric"].(string)
	if !ok {
		if msg, ok := d["msg"].(string); ok {
			return clean(msg)
		}
		return "progress"
	}
	s := clean(metric)
	if n, ok := d["n"]; ok {
		s += " #" + fmt.Sprint(n)
	}
	s += ":"
	if v, ok := d["value"]; ok {
		s += " " + number(v)
	}
	if b, ok := d["baseline"]; ok {
		s += " (baseline " + number(b) + ")"
	}
	if v, ok := d["verdict"].(string); ok {
		s += " " + clean(v)
	}
	if e, ok := d["error"].(string); ok && e != "" {
		s += ": " + clean(e)
	}
	return s
}

func number(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	return clean(fmt.Sprint(v))
}
