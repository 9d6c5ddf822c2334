package cli

import (
	"io"

	"github.com/runbookhq/runbook/internal/eval"
)

func writeExpressionDoc(w io.Writer) error { return eval.WriteDoc(w) }
