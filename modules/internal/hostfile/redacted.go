package hostfile

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/redact"
)

// Unredact gives back the paths of a result read from the journal in which
// a secret of the run was replaced (a -e value in dest:
// /etc/app-{{ env }}.conf): each key of actual whose recorded value holds
// <redacted> takes the step's own path, rendered again, when it matches
// what the journal shows around each <redacted>. Undoing at the redacted
// path would find nothing there and take the change for undone already.
func Unredact(mod string, data map[string]any, actual map[string]string) (map[string]any, error) {
	var out map[string]any
	var errs []error
	keys := make([]string, 0, len(actual))
	for k := range actual {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		a := actual[key]
		rec, _ := data[key].(string)
		if !strings.Contains(rec, redact.Placeholder) {
			continue
		}
		// Arguments rendered from a loop item the journal gave back
		// redacted are no better than the record.
		if a == "" || strings.Contains(a, redact.Placeholder) || !MatchesRedacted(rec, a) {
			errs = append(errs, fmt.Errorf("cannot undo the %s: its recorded %s %q hides a secret of the run, and the step's own path does not match it; put the previous file back by hand from its backup (by default DEST%s)", mod, key, rec, BackupSuffix))
			continue
		}
		if out == nil {
			out = maps.Clone(data)
		}
		out[key] = a
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if out == nil {
		return data, nil
	}
	return out, nil
}

// MatchesRedacted reports whether actual is rec with each <redacted> in rec
// standing for some text.
func MatchesRedacted(rec, actual string) bool {
	parts := strings.Split(rec, redact.Placeholder)
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(actual, first) || !strings.HasSuffix(actual[len(first):], last) {
		return false
	}
	mid := actual[len(first) : len(actual)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(mid[min(1, len(mid)):], p)
		if i < 0 {
			return false
		}
		mid = mid[min(1, len(mid))+i+len(p):]
	}
	return mid != ""
}
