package cli

import (
	"io"
	"os"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/event"
	"github.com/runbookhq/runbook/internal/journal"
	"github.com/runbookhq/runbook/internal/ui"
)

// view is what the operator sees of a run: a live view on a terminal, plain
// lines otherwise, or the JSON events; and a recap at the end.
type view struct {
	live  *ui.Live
	recap *ui.Recap
	out   io.Writer
}

// attachView attaches the sinks for --output to the bus. For a resumed run the
// recap starts from the journal's earlier events, so hosts that finished before
// the crash are counted.
func (a *app) attachView(bus *event.Bus, output string, resumed *journal.State) *view {
	v := &view{out: a.stdout}
	if output == "json" {
		bus.Attach(ui.NewJSON(a.stdout))
		return v
	}
	if resumed != nil {
		v.recap = ui.RecapOf(resumed.Events)
	} else {
		v.recap = ui.NewRecap()
	}
	bus.Attach(v.recap)
	// ui.IsTerminal sees through the redacting writer that a.stdout may be.
	if ui.IsTerminal(a.stdout) {
		v.live = ui.NewLive(a.stdout, ui.LiveOptions{Color: os.Getenv("NO_COLOR") == ""})
		bus.Attach(v.live)
	} else {
		bus.Attach(ui.NewPlain(a.stdout))
	}
	return v
}

// close stops the live view and prints the recap.
func (v *view) close() {
	if v.live != nil {
		v.live.Close()
	}
	if v.recap != nil {
		io.WriteString(v.out, "\n")
		v.recap.Print(v.out)
	}
}

// logger is the engine's debug log: off unless --log-level is given. With a
// live view, log lines go above its redrawn area so the next frame keeps them.
func (a *app) logger(level string, v *view) zerolog.Logger {
	if level == "" {
		return zerolog.Nop()
	}
	l, err := zerolog.ParseLevel(level)
	if err != nil {
		l = zerolog.InfoLevel
	}
	if v != nil && v.live != nil {
		return ui.Logger(v.live.LogWriter(), l)
	}
	return ui.Logger(a.stderr, l)
}
