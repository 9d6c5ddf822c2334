package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes the report as one indented JSON document (see Report for
// its fields). <, > and & are left as they are, so that "<redacted>" reads as
// it does in the journal.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
