package eval

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// Time zones must resolve the same on a bare controller (a container
	// without /usr/share/zoneinfo) as on a laptop: a maintenance window in the
	// wrong zone is an outage.
	_ "time/tzdata"
)

// window is a weekly maintenance window: on the given days, from start to end
// (minutes since midnight) in loc. A window whose end is before its start runs
// over midnight into the next day, and belongs to the day it starts on.
type window struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes since midnight; end may be 24*60
	loc        *time.Location
}

const windowForm = `write DAYS HH:MM-HH:MM ZONE, such as "Mon-Fri 02:00-05:00 UTC" or "Sat,Sun 22:00-04:00 Europe/Berlin"`

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// parseWindow parses "DAYS HH:MM-HH:MM ZONE". DAYS is a comma-separated list
// of days and day ranges (Mon-Fri, Fri-Mon wraps over the weekend). The zone
// is required: a window read in the controller's local zone would move with it.
func parseWindow(spec string) (*window, error) {
	fields := strings.Fields(spec)
	if len(fields) != 3 {
		return nil, fmt.Errorf("in_window: %q is not a window; %s", spec, windowForm)
	}
	w := &window{}
	if err := w.parseDays(fields[0]); err != nil {
		return nil, fmt.Errorf("in_window: %q: %w", spec, err)
	}
	if err := w.parseTimes(fields[1]); err != nil {
		return nil, fmt.Errorf("in_window: %q: %w", spec, err)
	}
	if strings.EqualFold(fields[2], "local") {
		return nil, fmt.Errorf("in_window: %q: name the time zone (UTC, Europe/Berlin) rather than Local, which depends on the controller", spec)
	}
	loc, err := time.LoadLocation(fields[2])
	if err != nil {
		return nil, fmt.Errorf("in_window: %q: unknown time zone %q; use UTC or an IANA name such as Europe/Berlin", spec, fields[2])
	}
	w.loc = loc
	return w, nil
}

func (w *window) parseDays(s string) error {
	for _, item := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, err := day(from)
		if err != nil {
			return err
		}
		b := a
		if isRange {
			if b, err = day(to); err != nil {
				return err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func day(s string) (time.Weekday, error) {
	d, ok := dayNames[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("unknown day %q; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, as a list (Sat,Sun) or a range (Mon-Fri)", s)
	}
	return d, nil
}

func (w *window) parseTimes(s string) error {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("%q is not a time range; write HH:MM-HH:MM, such as 02:00-05:00", s)
	}
	var err error
	if w.start, err = clock(from, false); err != nil {
		return err
	}
	if w.end, err = clock(to, true); err != nil {
		return err
	}
	if w.start == w.end {
		return fmt.Errorf("the window %s is empty; for a whole day write 00:00-24:00", s)
	}
	return nil
}

// clock parses HH:MM into minutes since midnight; 24:00 is allowed as an end.
func clock(s string, isEnd bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	bad := fmt.Errorf("%q is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)", s)
	if !ok || !twoDigits(hh) || !twoDigits(mm) {
		return 0, bad
	}
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	if m > 59 || h > 24 || h == 24 && (m != 0 || !isEnd) {
		return 0, bad
	}
	return h*60 + m, nil
}

// contains reports whether t falls in the window, read in the window's zone.
func (w *window) contains(t time.Time) bool {
	t = t.In(w.loc)
	m := t.Hour()*60 + t.Minute()
	today := t.Weekday()
	if w.start < w.end {
		return w.days[today] && m >= w.start && m < w.end
	}
	// Over midnight: the evening part belongs to today, the morning part to
	// the window that started yesterday.
	yesterday := (today + 6) % 7
	return w.days[today] && m >= w.start || w.days[yesterday] && m < w.end
}

func twoDigits(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// Window is a weekly change window written as in_window's argument ("Mon-Fri
// 02:00-05:00 UTC"): the runbook's and a step's window: key use the same
// parser as the expression function, so the two never disagree.
type Window struct {
	w   *window
	src string
}

// ParseWindow parses spec as in_window does.
func ParseWindow(spec string) (*Window, error) {
	w, err := parseWindow(spec)
	if err != nil {
		// The caller names the key; the function's name would mislead.
		return nil, errors.New(strings.TrimPrefix(err.Error(), "in_window: "))
	}
	return &Window{w: w, src: spec}, nil
}

// String is the window as written.
func (w *Window) String() string { return w.src }

// Contains reports whether t falls in the window.
func (w *Window) Contains(t time.Time) bool { return w.w.contains(t) }

// Next returns when the window next opens after t, in the window's zone.
func (w *Window) Next(t time.Time) time.Time {
	l := t.In(w.w.loc)
	for d := 0; d <= 8; d++ {
		c := time.Date(l.Year(), l.Month(), l.Day()+d, w.w.start/60, w.w.start%60, 0, 0, w.w.loc)
		if w.w.days[c.Weekday()] && c.After(t) {
			return c
		}
	}
	return time.Time{} // no day at all: parseDays never allows it
}
