package analysis

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/modules/arg"
)

// Delay is a duration that may be zero: initial_delay: 0s says "no delay"
// as Argo's templates write it, where arg.Duration wants a positive time.
type Delay time.Duration

// Std returns the delay as a time.Duration.
func (v Delay) Std() time.Duration { return time.Duration(v) }

func (v Delay) String() string { return time.Duration(v).String() }

// MarshalText writes the delay as a runbook does: "30s".
func (v Delay) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// DocType names the type in runbook doc.
func (Delay) DocType() string { return "duration (0s for none)" }

// DecodeNode implements arg.NodeDecoder.
func (v *Delay) DecodeNode(d *arg.Decoder, n *yaml.Node, ds *diag.Diags) {
	if n.Kind == yaml.ScalarNode && (n.Value == "0" || n.Value == "0s") {
		*v = 0
		return
	}
	var dur arg.Duration
	dur.DecodeNode(d, n, ds)
	*v = Delay(dur)
}
