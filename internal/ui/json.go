package ui

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/runbookhq/runbook/internal/event"
)

// JSON writes each event as one line of JSON (`--output json`), encoded exactly
// as the journal encodes it, so that a script reading a run as it happens and
// one reading its journal afterwards parse the same thing. Every line carries
// the run_id the Bus stamped. JSON is safe for concurrent use.
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON returns a JSON sink writing to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	// Keep "<redacted>" as it is, as the journal does, so that grep finds it.
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

// Emit writes e and its newline in one Write, so that a reader never sees half
// an event unless the process dies in the middle of the write.
func (j *JSON) Emit(e event.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.enc.Encode(e)
}
