package eval

import (
	"strings"
	"testing"
	"time"
)

func TestWindowNext(t *testing.T) {
	// 2026-12-07 is a Monday.
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		spec, now string
		in        bool
		next      string
	}{
		{"Mon-Fri 02:00-05:00 UTC", "2026-12-07T03:00:00Z", true, "2026-12-08T02:00:00Z"},
		{"Mon-Fri 02:00-05:00 UTC", "2026-12-07T01:59:00Z", false, "2026-12-07T02:00:00Z"},
		{"Mon-Fri 02:00-05:00 UTC", "2026-12-07T05:00:00Z", false, "2026-12-08T02:00:00Z"},
		{"Mon-Fri 02:00-05:00 UTC", "2026-12-11T06:00:00Z", false, "2026-12-14T02:00:00Z"}, // Friday: Monday next
		{"Sat,Sun 22:00-04:00 UTC", "2026-12-07T03:00:00Z", true, "2026-12-12T22:00:00Z"},  // Monday 03:00 is in Sunday's night
		{"Sat,Sun 22:00-04:00 UTC", "2026-12-07T04:00:00Z", false, "2026-12-12T22:00:00Z"},
		{"Sat,Sun 22:00-04:00 UTC", "2026-12-14T03:00:00Z", true, "2026-12-19T22:00:00Z"},
		{"Mon 09:00-10:00 Europe/Berlin", "2026-12-07T07:30:00Z", false, "2026-12-07T08:00:00Z"},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		now := at(tt.now)
		if got := w.Contains(now); got != tt.in {
			t.Errorf("%s at %s: Contains = %v, want %v", tt.spec, tt.now, got, tt.in)
		}
		if got := w.Next(now); !got.Equal(at(tt.next)) {
			t.Errorf("%s at %s: Next = %s, want %s", tt.spec, tt.now, got, tt.next)
		}
	}
}

func TestParseWindowErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"Mon-Fri 02:00-05:00":       `"Mon-Fri 02:00-05:00" is not a window`,
		"Mon-Fry 02:00-05:00 UTC":   `unknown day "Fry"`,
		"Mon-Fri 02:00-05:00 Local": "name the time zone",
	} {
		_, err := ParseWindow(spec)
		if err == nil || !strings.Contains(err.Error(), want) || strings.HasPrefix(err.Error(), "in_window") {
			t.Errorf("ParseWindow(%q) = %v, want %q without the function's name", spec, err, want)
		}
	}
}
