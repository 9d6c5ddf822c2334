package spec

import (
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
)

// Decoder fills Go values from YAML nodes strictly: every key must match a
// `yaml` tag, scalars must convert, fields tagged `runbook:"required"` must be
// present. It records every problem and keeps going. (Stub: being implemented.)
type Decoder struct {
	File string
}

// Decode fills out (a pointer) from n.
func (d *Decoder) Decode(n *yaml.Node, out any, ds *diag.Diags) { panic("unimplemented") }
