package hostfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/modules"
)

// Put installs content at w.Dest (w.SHA256 is filled in here) as the
// template and copy modules do: nothing when dest has it already, the
// unified diff in the result's "diff" when h.Diff, and with dry (--check)
// nothing written. validate, when given, runs on the staged file (each %s
// in its words is the staged file's path) before it is installed; when it
// fails, the staged file is removed and dest is not touched.
func Put(ctx context.Context, h *modules.Host, w Want, content []byte, validate []string, dry bool) (modules.Result, error) {
	sum := sha256.Sum256(content)
	w.SHA256 = hex.EncodeToString(sum[:])
	p, err := Decide(ctx, h, w)
	if err != nil {
		return modules.Result{}, err
	}
	data := Result(w, p)
	if p.Changed && h.Diff {
		var before []byte
		known := false
		if p.Cur.Exists {
			if before, known, err = ReadText(ctx, h, w.Dest); err != nil {
				return modules.Result{}, err
			}
		}
		data["diff"] = Diff(w.Dest, before, known, p.Cur.Exists, content)
	}
	if !p.Changed {
		return modules.Result{Data: data}, nil
	}
	if dry {
		if len(validate) > 0 {
			data["msg"] = p.Why + "; validate is not run in --check, which writes nothing to stage"
		}
		return modules.Result{Changed: true, Data: data}, nil
	}
	stage, err := Stage(ctx, h, w, p, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	})
	if err != nil {
		return modules.Result{}, err
	}
	if len(validate) > 0 {
		if err := runValidate(ctx, h, validate, stage); err != nil {
			RemoveTemp(h, stage, true)
			return modules.Result{}, fmt.Errorf("%w; %s was not touched", err, w.Dest)
		}
	}
	if err := Install(ctx, h, w, p, stage); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Changed: true, Data: data}, nil
}

// runValidate runs the validate command on the staged file, as Ansible's
// validate does: without a shell, %s replaced by the file's path.
func runValidate(ctx context.Context, h *modules.Host, argv []string, stage string) error {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = strings.ReplaceAll(a, "%s", stage)
	}
	if _, err := OwnFile(ctx, h, stage); err != nil {
		return err
	}
	out, err := h.Conn.Run(ctx, conn.Cmd{Argv: words, Become: h.Become, BecomeUser: h.BecomeUser})
	if err != nil {
		msg := strings.TrimSpace(string(out.Stderr))
		if msg == "" {
			msg = strings.TrimSpace(string(out.Stdout))
		}
		// The error ends with the last line of stderr already; the lines
		// before it often say why (nginx -t: the directive and its line).
		if last := lastLine(msg); msg != "" && strings.Contains(err.Error(), last) {
			msg = strings.TrimSpace(strings.TrimSuffix(msg, last))
		}
		if msg != "" {
			return fmt.Errorf("validate failed: %w: %s", err, msg)
		}
		return fmt.Errorf("validate failed: %w", err)
	}
	return nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
