package spec

import (
	"io/fs"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
)

// NodeDecoder is implemented by types that decode themselves from a YAML node,
// usually because they accept several shapes (serial: 2 | "25%" | [1, "50%"]).
// A decoder records every problem in ds, with the node's position, and keeps going.
type NodeDecoder interface {
	DecodeNode(d *Decoder, n *yaml.Node, ds *diag.Diags)
}

// Duration is a positive duration written as Go writes them: "90s", "1m30s", "250ms".
type Duration time.Duration

// FileMode is a permission mode written in octal: "0755" (a string, so YAML does
// not read it as a decimal number) or 0755.
type FileMode fs.FileMode

// Quota is a count of hosts: 3, or a percent of some total: "25%".
type Quota struct {
	Count     int
	Percent   float64 // used when IsPercent
	IsPercent bool
	Pos       diag.Pos
}

// Serial is a list of batch sizes; the last one repeats: 2, "25%" or [1, "50%", "100%"].
type Serial []Quota

// Argv is a command written as one string, split into words the way a shell
// would split it (quotes respected, nothing expanded), or as a list of words.
type Argv []string

// StringList is one string or a list of strings (tags, when-lists).
type StringList []string

// Expr is an expr-lang expression that a module evaluates itself (check's
// `expect`, assert-metric's `expect`). The loader compiles it as a Bool with
// `result` in scope plus the names the module declares (ExprNamer).
type Expr struct {
	Src     string
	Pos     diag.Pos
	Program *eval.Program
}

// ExprNamer is implemented by module argument structs whose Expr fields see
// more names than a step's usual scope (metric look-ups in assert-metric).
type ExprNamer interface {
	ExprNames(field string) map[string]any
}
