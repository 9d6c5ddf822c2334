package ui

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/runbookhq/runbook/internal/event"
)

// FrameInterval is how often a Live view redraws: often enough for a spinner to
// look alive, rarely enough to cost nothing on a slow ssh session.
const FrameInterval = 100 * time.Millisecond

// LiveOptions configure a Live view. The zero value draws without colour at the
// terminal's size, ten frames a second.
type LiveOptions struct {
	// Color colours symbols and times. NO_COLOR in the environment turns it off.
	Color bool
	// Width and Height are the terminal's size in cells. Zero asks w when it is
	// a terminal, at every frame so that a resize is followed, and else assumes 80x24.
	Width, Height int
	// Tick, when set, replaces the ticker: one frame is drawn per value
	// received. For tests, and for callers that pace the view themselves.
	Tick <-chan time.Time
	// Now is the clock for elapsed times; nil means time.Now.
	Now func() time.Time
}

// Live is the view for a terminal. Above, lines that are final scroll up and
// stay: the run and each batch as they start, every failure with its error,
// each host as it ends (✓ done, ✗ failed, ↺ rolled back) with its time. Below,
// a few lines are redrawn in place: the current batch, then one line per host
// at work with a spinner, its step, how long the step has run and its attempt.
//
// Emit only updates the state; a goroutine draws it, at most every
// FrameInterval, with nothing but cursor-up and erase-below, so that a stalled
// terminal never holds up the run. Live is safe for concurrent use. Call Close
// when the run is over.
type Live struct {
	w   io.Writer
	pal palette
	now func() time.Time

	width, height int // fixed by the options, or 0 to ask the terminal
	fd            int
	tty           bool

	// out serialises writes to w, and guards drawn. It is taken before mu,
	// never while holding it, so that Emit never waits for the terminal.
	out   sync.Mutex
	drawn int // lines of the live area on screen, below the final ones

	mu      sync.Mutex
	totals  runTotals
	runID   string
	pending []string // final lines not yet written
	partial []byte   // the start of a log line still being written
	batch   *liveBatch
	hosts   map[string]*liveHost
	active  []string // hosts at work, in the order they started
	ctrl    *liveStep
	frame   int
	err     error // the first write error; Emit returns it
	closed  bool

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	// onDraw, for tests, is called after each frame the ticker draws.
	onDraw func()
}

type liveBatch struct {
	index, hosts, done int
	started            time.Time
}

type liveHost struct {
	name        string
	started     time.Time
	step        *liveStep
	rollingBack bool
	last        string // the label of the last step that ended
	lastEnd     time.Time
	// begun: its host_start came. Before it, a host shows only its steps
	// run ahead of its batch, each on a line of its own that ends it.
	begun bool
}

// liveStep is a step in flight: a host's, or the controller's (preflight,
// gates, post) with who set to the phase.
type liveStep struct {
	who     string
	label   string
	started time.Time
	attempt int
	lastErr string // of the attempt that failed last
	// progress is what the step reported last (an analysis' measurement).
	progress string
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// NewLive returns a Live view drawing on w and starts drawing it.
func NewLive(w io.Writer, opts LiveOptions) *Live { return newLive(w, opts, nil) }

func newLive(w io.Writer, opts LiveOptions, onDraw func()) *Live {
	l := &Live{
		onDraw:  onDraw,
		w:       w,
		pal:     palette{on: opts.Color && !noColorEnv()},
		now:     opts.Now,
		width:   opts.Width,
		height:  opts.Height,
		hosts:   map[string]*liveHost{},
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.fd, l.tty = terminalFd(w)
	tick, stopTicker := opts.Tick, func() {}
	if tick == nil {
		t := time.NewTicker(FrameInterval)
		tick, stopTicker = t.C, t.Stop
	}
	go l.loop(tick, stopTicker)
	return l
}

func (l *Live) loop(tick <-chan time.Time, stopTicker func()) {
	defer close(l.stopped)
	defer stopTicker()
	for {
		select {
		case <-l.stop:
			return
		case _, ok := <-tick:
			if !ok {
				tick = nil // a closed Tick draws no more frames; Close still ends the view
				continue
			}
			l.draw(false)
			if l.onDraw != nil {
				l.onDraw()
			}
		}
	}
}

// Close stops drawing, writes what is pending and the final state of the hosts
// still at work (none, after a run that ended), and returns the first error
// writing to w. Later calls return the same error and write nothing.
func (l *Live) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.stopped
		l.draw(true)
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Emit updates the view's state; the next frame shows it. It returns the first
// error writing to w, so that the Bus reports a broken terminal once.
func (l *Live) Emit(e event.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.apply(e)
	}
	return l.err
}

// LogWriter returns a writer for log lines (see Logger) that shows them among
// the final lines, above the live area: written straight to the terminal they
// would be overdrawn by the next frame. After Close it writes straight to w.
func (l *Live) LogWriter() io.Writer { return &liveLog{l: l} }

type liveLog struct{ l *Live }

func (lw *liveLog) Write(p []byte) (int, error) {
	l := lw.l
	l.mu.Lock()
	if !l.closed {
		defer l.mu.Unlock()
		l.partial = append(l.partial, p...)
		for {
			i := bytes.IndexByte(l.partial, '\n')
			if i < 0 {
				break
			}
			l.pending = append(l.pending, string(l.partial[:i]))
			l.partial = l.partial[i+1:]
		}
		return len(p), nil
	}
	l.mu.Unlock()
	// Close set closed while holding out, and released it after the final
	// frame: this line comes after it.
	l.out.Lock()
	defer l.out.Unlock()
	return l.w.Write(p)
}

// draw writes one frame: the final lines that are pending, then the live area
// in place of the previous one.
func (l *Live) draw(final bool) {
	l.out.Lock()
	defer l.out.Unlock()
	l.mu.Lock()
	if final {
		l.closed = true
		if len(l.partial) > 0 {
			l.pending = append(l.pending, string(l.partial))
			l.partial = nil
		}
	}
	frame := l.frameLocked(final)
	l.mu.Unlock()
	if frame == "" {
		return
	}
	if _, err := io.WriteString(l.w, frame); err != nil {
		l.mu.Lock()
		if l.err == nil {
			l.err = fmt.Errorf("live view: %w", err)
		}
		l.mu.Unlock()
	}
}

func (l *Live) frameLocked(final bool) string {
	width, height := l.size()
	lines := l.liveLines(width, height, final)
	if len(l.pending) == 0 && len(lines) == 0 && l.drawn == 0 {
		return ""
	}
	var b strings.Builder
	if l.drawn > 0 {
		// Back to the first line of the live area, and erase it and all below.
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", l.drawn)
	}
	for _, p := range l.pending {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	l.pending = l.pending[:0]
	for _, s := range lines {
		b.WriteString(truncate(s, width-1, l.pal.on))
		b.WriteByte('\n')
	}
	l.drawn = len(lines)
	if final {
		l.drawn = 0
	}
	l.frame++
	return b.String()
}

func (l *Live) size() (width, height int) {
	width, height = l.width, l.height
	if (width <= 0 || height <= 0) && l.tty {
		if w, h, err := term.GetSize(l.fd); err == nil {
			if width <= 0 {
				width = w
			}
			if height <= 0 {
				height = h
			}
		}
	}
	if width <= 0 {
		width = 80
	}
	if height <= 0 {
		height = 24
	}
	return max(width, 20), max(height, 4)
}

// liveLines is the live area: the current batch, the controller's step in
// flight, and a line per host at work. It keeps to the screen's height less
// one line, because the cursor cannot go up past the top of the screen.
func (l *Live) liveLines(width, height int, final bool) []string {
	now := l.now()
	var head []string
	if b := l.batch; b != nil {
		head = append(head, l.pal.dim(fmt.Sprintf("%s  %d/%d hosts done  %s",
			l.totals.batch(b.index), b.done, b.hosts, duration(now.Sub(b.started)))))
	}
	spin := l.pal.cyan(spinner[l.frame%len(spinner)])
	if final {
		// Whatever is still at work when the view closes did not finish.
		spin = l.pal.yellow("…")
	}
	var steps []*liveStep
	if l.ctrl != nil {
		steps = append(steps, l.ctrl)
	}
	for _, name := range l.active {
		h := l.hosts[name]
		s := h.step
		if s == nil {
			// Between two steps: a guard is being evaluated, or the host is
			// about to end.
			s = &liveStep{label: "starting", started: h.started}
			switch {
			case h.rollingBack:
				s.label = "rolling back"
			case h.last != "":
				s.label, s.started = "after "+h.last, h.lastEnd
			}
		}
		s.who = h.name
		steps = append(steps, s)
	}
	room := max(height-1-len(head), 2)
	more := 0
	if len(steps) > room {
		more = len(steps) - (room - 1)
		steps = steps[:room-1]
	}
	pad := 0
	for _, s := range steps {
		pad = max(pad, utf8.RuneCountInString(s.who))
	}
	lines := head
	for _, s := range steps {
		line := fmt.Sprintf("%s %-*s  %s  %s", spin, pad, s.who, s.label, l.pal.dim(duration(now.Sub(s.started))))
		if s.progress != "" {
			line += "  " + s.progress
		}
		if s.attempt > 1 {
			line += "  " + l.pal.yellow("attempt "+strconv.Itoa(s.attempt))
			if s.lastErr != "" {
				line += ": " + s.lastErr
			}
		}
		lines = append(lines, line)
	}
	if more > 0 {
		lines = append(lines, l.pal.dim(fmt.Sprintf("… and %d more at work", more)))
	}
	return lines
}

// apply updates the state with e, and queues the final lines it makes.
func (l *Live) apply(e event.Event) {
	switch e.Kind {
	case event.RunStart, event.RunResume:
		l.runID = e.RunID
		verb := ""
		if e.Kind == event.RunResume {
			verb = " resumed"
		}
		if info, ok := l.totals.learn(e); ok {
			l.say("run %s%s: %s", e.RunID, verb, describeRun(info))
		} else {
			l.say("run %s%s", e.RunID, verb)
		}
	case event.RunEnd:
		l.sayRunEnd(e)
	case event.Abort:
		l.say("%s %s", l.pal.red("!"), withError("abort", e))
	case event.Interrupt:
		l.say("%s %s", l.pal.yellow("!"), withError("interrupt", e))

	case event.BatchStart:
		hosts := batchHosts(e)
		l.batch = &liveBatch{index: e.Batch, hosts: len(hosts), started: e.Time}
		l.say("%s: %s", l.pal.bold(l.totals.batch(e.Batch)), strings.Join(hosts, ", "))
	case event.BatchEnd:
		l.say("%s %s%s", l.symbol(e.Status), l.totals.batch(e.Batch), l.outcome(e, l.batchStart()))
		l.batch = nil
	case event.GateEnd:
		l.say("%s gates after %s%s", l.symbol(e.Status), l.totals.batch(e.Batch), l.outcome(e, time.Time{}))

	case event.HostStart:
		l.host(e.Host, e.Time).begun = true
	case event.HostEnd:
		h := l.host(e.Host, e.Time)
		l.say("%s %s%s", l.symbol(e.Status), clean(e.Host), l.outcome(e, h.started))
		l.retire(e.Host)
		if l.batch != nil {
			l.batch.done++
		}
	case event.RollbackStart:
		h := l.host(e.Host, e.Time)
		h.rollingBack, h.step = true, nil
	case event.RollbackEnd:
		h := l.host(e.Host, e.Time)
		h.rollingBack, h.step = false, nil
		switch {
		case e.Status != event.RolledBack && e.Status != event.OK:
			l.say("%s %s%s", l.pal.red("✗"), clean(e.Host), l.outcome(e, time.Time{}))
		case !h.begun:
			l.say("%s %s  ahead steps undone: its batch did not start", l.symbol(e.Status), clean(e.Host))
		}
		if !h.begun {
			l.retire(e.Host)
		}

	case event.StepStart, event.RollbackStepStart:
		s := &liveStep{label: liveLabel(e, l.totals) + loopItems(e), started: e.Time, attempt: max(e.Attempt, 1)}
		if hostOwned(e) {
			l.host(e.Host, e.Time).step = s
		} else {
			s.who = ctrlWho(e)
			l.ctrl = s
		}
	case event.StepProgress:
		s := l.ctrl
		if hostOwned(e) {
			s = l.host(e.Host, e.Time).step
		}
		if s != nil {
			s.progress = progressText(e.Data)
		}
	case event.Leftover:
		l.say("%s %s  %s: %s", l.pal.red("!"), clean(e.Host), liveLabel(e, l.totals), clean(e.Error))
	case event.ApprovalWait, event.Approval, event.Window:
		line, _ := approvalLine(e)
		mark := l.pal.yellow("?")
		if e.Status == event.OK {
			mark = l.pal.green("✓")
		} else if e.Status == event.Failed || e.Status == event.Refused {
			mark = l.pal.red("✗")
		}
		l.say("%s %s", mark, line)
	case event.StepRetry:
		s := l.ctrl
		if hostOwned(e) {
			s = l.host(e.Host, e.Time).step
		}
		if s != nil {
			s.attempt = max(e.Attempt, 1) + 1
			s.lastErr = clean(e.Error)
		}
	case event.StepEnd, event.RollbackStepEnd:
		var who string
		if hostOwned(e) {
			h := l.host(e.Host, e.Time)
			h.step, h.last, h.lastEnd = nil, liveLabel(e, l.totals), e.Time
			if e.Ahead && !h.begun {
				// Its batch has not started: the line says how it went,
				// and the host leaves the live area until it does.
				l.retire(e.Host)
			} else if succeeded(e.Status) && shownLines(e) == nil {
				return // the host's own line says how it ended
			}
			who = clean(e.Host)
		} else {
			who = ctrlWho(e)
			l.ctrl = nil
		}
		l.say("%s %s  %s%s", l.symbol(e.Status), who, liveLabel(e, l.totals), l.outcome(e, time.Time{}))
		for _, s := range shownLines(e) {
			l.say("%s", s)
		}
	}
}

// say queues a final line.
func (l *Live) say(format string, args ...any) {
	l.pending = append(l.pending, fmt.Sprintf(format, args...))
}

func (l *Live) sayRunEnd(e event.Event) {
	code := ""
	end, ok := e.EndInfo()
	if ok {
		code = ", exit " + strconv.Itoa(end.ExitCode)
	}
	s := fmt.Sprintf("%s run %s %s%s", l.symbol(e.Status), e.RunID, statusOr(e.Status, "ended"), code)
	if e.Duration > 0 {
		s += " after " + duration(e.Duration)
	}
	if end.Reason != "" && !succeeded(e.Status) {
		s += ": " + clean(end.Reason)
	}
	l.say("%s", s)
	l.batch, l.ctrl = nil, nil
}

// outcome is how a thing ended and how long it took: "  changed  9s: error".
func (l *Live) outcome(e event.Event, started time.Time) string {
	d := e.Duration
	if d == 0 && !started.IsZero() {
		d = e.Time.Sub(started)
	}
	s := "  " + hostWord(e.Status)
	if d > 0 {
		s += "  " + l.pal.dim(duration(d))
	}
	if e.Attempt > 1 {
		s += "  attempt " + strconv.Itoa(e.Attempt)
	}
	if e.Error != "" {
		s += ": " + clean(e.Error)
	}
	return s
}

func (l *Live) batchStart() time.Time {
	if l.batch == nil {
		return time.Time{}
	}
	return l.batch.started
}

// host returns the host's state, and puts it at work if it was not: after a
// resume its first event may be a step.
func (l *Live) host(name string, at time.Time) *liveHost {
	h := l.hosts[name]
	if h == nil {
		h = &liveHost{name: clean(name), started: at}
		l.hosts[name] = h
		l.active = append(l.active, name)
	}
	return h
}

// retire takes a host that ended off the live area.
func (l *Live) retire(name string) {
	delete(l.hosts, name)
	for i, n := range l.active {
		if n == name {
			l.active = append(l.active[:i], l.active[i+1:]...)
			break
		}
	}
}

func (l *Live) symbol(st event.Status) string {
	switch st {
	case event.OK, event.Changed, event.Skipped:
		return l.pal.green("✓")
	case event.RolledBack:
		return l.pal.yellow("↺")
	case event.Interrupted, event.Aborted:
		return l.pal.yellow("!")
	}
	return l.pal.red("✗")
}

// hostOwned reports whether a step event is a host's own (steps or rollback).
func hostOwned(e event.Event) bool { return e.Host != "" && isHostStep(e) }

// ctrlWho names the controller phase of a step, and the host it ran for if any.
func ctrlWho(e event.Event) string {
	who := phaseLabel(e)
	if who == "" {
		who = string(e.Phase)
	}
	if e.Host != "" {
		who += " " + clean(e.Host)
	}
	return who
}

// liveLabel is a step as the live view shows it: "3/6 swap",
// "rollback: undo 3/6 swap", "leader is stable".
func liveLabel(e event.Event, t runTotals) string {
	if !isHostStep(e) {
		// The controller's steps are few and named; a number would be noise.
		if e.Step == "" {
			return "step " + t.stepNo(e)
		}
		return clean(e.Step)
	}
	label := join(phaseLabel(e), t.stepNo(e), clean(e.Step))
	if e.Ahead {
		label = "ahead: " + label
	}
	return label
}

// truncate cuts s to n visible cells, counting a rune as one cell and escape
// sequences as none, and ends a cut line with "…" (and a colour reset).
func truncate(s string, n int, color bool) string {
	if n <= 0 {
		return ""
	}
	visible := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i = skipEscape(s, i)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		visible++
		if visible == n && i+size < len(s) && hasVisible(s[i+size:]) {
			cut := s[:i] + "…"
			if color {
				cut += reset
			}
			return cut
		}
		i += size
	}
	return s
}

func hasVisible(s string) bool {
	for i := 0; i < len(s); {
		if s[i] != 0x1b {
			return true
		}
		i = skipEscape(s, i)
	}
	return false
}

// skipEscape returns the index after the CSI sequence at s[i].
func skipEscape(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '[' {
		j++
		for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
			j++
		}
	}
	return min(j+1, len(s))
}

const reset = "\x1b[0m"

// palette colours text when on.
type palette struct{ on bool }

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + reset
}

func (p palette) green(s string) string  { return p.paint("32", s) }
func (p palette) red(s string) string    { return p.paint("31", s) }
func (p palette) yellow(s string) string { return p.paint("33", s) }
func (p palette) cyan(s string) string   { return p.paint("36", s) }
func (p palette) dim(s string) string    { return p.paint("2", s) }
func (p palette) bold(s string) string   { return p.paint("1", s) }
