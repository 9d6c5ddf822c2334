package hostfile

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/runbookhq/runbook/modules"
)

// MaxDiff is the largest file a diff is shown for (Ansible's max_diff_size
// is 100 KiB): a larger one, or one that is not text, is summed up in a line.
const MaxDiff = 256 << 10

// ReadText reads p on the host for a diff, at most MaxDiff bytes, following
// a link as the install compares the file it replaces. ok is false when p
// is longer than that.
func ReadText(ctx context.Context, h *modules.Host, p string) (b []byte, ok bool, err error) {
	out, err := Run(ctx, h, "head", "-c", strconv.Itoa(MaxDiff+1), "--", p)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s for its diff: %w", p, err)
	}
	if len(out.Stdout) > MaxDiff {
		return nil, false, nil
	}
	return out.Stdout, true, nil
}

// Diff is the unified diff from before to after of the file dest, as diff
// -u prints it; existed says whether dest was there (else the diff is from
// /dev/null). A side that is binary or over MaxDiff (known says it was read)
// gives a one-line summary instead.
func Diff(dest string, before []byte, known, existed bool, after []byte) string {
	from := dest + " (before)"
	if !existed {
		from, before = "/dev/null", nil
	}
	switch {
	case existed && !known, len(after) > MaxDiff:
		return fmt.Sprintf("(%s: a file over %d KiB; diff not shown)\n", dest, MaxDiff>>10)
	case !isText(before) || !isText(after):
		return fmt.Sprintf("(%s: binary content; diff not shown)\n", dest)
	case bytes.Equal(before, after):
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(before), B: lines(after),
		FromFile: from, ToFile: dest + " (after)", Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("(%s: no diff: %v)\n", dest, err)
	}
	return d
}

// lines splits b after each newline; a last line without one gets the
// mark diff -u gives it, so that adding the newline shows as a change.
func lines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	out := strings.SplitAfter(string(b), "\n")
	if out[len(out)-1] == "" {
		return out[:len(out)-1]
	}
	out[len(out)-1] += "\n\\ No newline at end of file\n"
	return out
}

func isText(b []byte) bool { return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 }
