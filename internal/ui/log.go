package ui

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Logger returns a logger writing human-readable lines to w for the engine's
// debug output (`--log-level`): time (UTC, as every view prints it), level,
// message and fields. It colours only when w is a terminal (or the log writer
// of a colourful Live view) and NO_COLOR is not set.
//
// When a Live view draws on the same terminal, log through Live.LogWriter:
// a line written straight to the terminal would be overdrawn by the next frame.
func Logger(w io.Writer, level zerolog.Level) zerolog.Logger {
	cw := zerolog.ConsoleWriter{
		Out:          w,
		NoColor:      !logColor(w),
		TimeFormat:   time.TimeOnly,
		TimeLocation: time.UTC,
	}
	return zerolog.New(cw).Level(level).With().Timestamp().Logger()
}

func logColor(w io.Writer) bool {
	if noColorEnv() {
		return false
	}
	if lw, ok := w.(*liveLog); ok {
		return lw.l.pal.on
	}
	_, tty := terminalFd(w)
	return tty
}
