// The argument types moved to modules/arg; these aliases keep the loader
// building while its callers move over.

package spec

import "github.com/runbookhq/runbook/modules/arg"

type (
	NodeDecoder = arg.NodeDecoder
	Decoder     = arg.Decoder
	Duration    = arg.Duration
	FileMode    = arg.FileMode
	Quota       = arg.Quota
	Serial      = arg.Serial
	Argv        = arg.Argv
	StringList  = arg.StringList
	Expr        = arg.Expr
	ExprNamer   = arg.ExprNamer
)

var (
	Resolve = arg.Resolve
	Keys    = arg.Keys
)
