package plan

import (
	"testing"

	"github.com/runbookhq/runbook/internal/spec"
)

// A resume compares digests: an imported file that changed must change the
// runbook's, and the working folder must not.
func TestRunbookDigestCoversImports(t *testing.T) {
	src := []byte("runbook: r\n")
	plain := &spec.Runbook{File: "rb.yml", Source: src}
	if runbookDigest(plain) != digest(src) {
		t.Error("a runbook without imports changed digest")
	}
	with := func(file, lib, body string) string {
		return runbookDigest(&spec.Runbook{File: file, Source: src, Imports: []spec.Source{{File: lib, Source: []byte(body)}}})
	}
	a := with("rb.yml", "lib/x.yml", "- shell: a\n")
	if a == digest(src) {
		t.Error("the import is not in the digest")
	}
	if b := with("rb.yml", "lib/x.yml", "- shell: b\n"); b == a {
		t.Error("a changed import kept the digest")
	}
	if c := with("runbooks/rb.yml", "runbooks/lib/x.yml", "- shell: a\n"); c != a {
		t.Error("another working folder changed the digest")
	}
}
