package redact

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/conn"
)

// chunkWriter records each Write it gets, to see what a Writer passes on when.
type chunkWriter struct{ writes []string }

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *chunkWriter) all() string { return strings.Join(c.writes, "") }

func TestWriterSplitAcrossWrites(t *testing.T) {
	s := &Set{}
	s.Add("S3CR3T-TOKEN", "S3CR3T-TOKEN-LONGER", "abcd", "pw")
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"whole in one write", []string{"a S3CR3T-TOKEN b\n"}, "a <redacted> b\n"},
		{"split in two", []string{"a S3CR3", "T-TOKEN b\n"}, "a <redacted> b\n"},
		{"one byte at a time", strings.Split("x S3CR3T-TOKEN y", ""), "x <redacted> y"},
		{"split over three", []string{"S3", "CR3T-TO", "KEN"}, "<redacted>"},
		{"longer secret wins across writes", []string{"S3CR3T-TOKEN", "-LONG", "ER!"}, "<redacted>!"},
		{"shorter when the longer does not come", []string{"S3CR3T-TOKEN", "-LONG", "!"}, "<redacted>-LONG!"},
		{"prefix that never completes", []string{"S3CR3T-TO", "ken\n"}, "S3CR3T-TOken\n"},
		{"prefix at the very end is flushed", []string{"done: S3CR3"}, "done: S3CR3"},
		{"two secrets back to back", []string{"abc", "dS3CR3T-TOKENab", "cd"}, "<redacted><redacted><redacted>"},
		{"overlapping start", []string{"aabc", "d"}, "a<redacted>"},
		{"short secret left alone in a stream", []string{"pw\n"}, "pw\n"},
		{"nothing secret", []string{"hello ", "world\n"}, "hello world\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cw chunkWriter
			w := NewWriter(&cw, s)
			for _, c := range tt.chunks {
				n, err := w.Write([]byte(c))
				if err != nil || n != len(c) {
					t.Fatalf("Write(%q) = %d, %v", c, n, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := cw.all(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
			for _, piece := range []string{"S3CR3T-TOKEN", "abcd"} {
				if strings.Contains(tt.want, piece) {
					continue
				}
				for _, wr := range cw.writes {
					if strings.Contains(wr, piece) {
						t.Errorf("a write passed %q on: %q", piece, wr)
					}
				}
			}
		})
	}
}

// TestWriterHoldsOnlyWhatCouldGrow: text that cannot start a secret is passed
// on at once (a prompt must show before the answer is typed); only a possible
// start of a secret waits.
func TestWriterHoldsOnlyWhatCouldGrow(t *testing.T) {
	s := &Set{}
	s.Add("S3CR3T-TOKEN")
	var cw chunkWriter
	w := NewWriter(&cw, s)
	w.Write([]byte("Continue? [y/N] "))
	if got := cw.all(); got != "Continue? [y/N] " {
		t.Fatalf("a prompt was held back: %q", got)
	}
	w.Write([]byte("token S3C"))
	if got := cw.all(); got != "Continue? [y/N] token " {
		t.Fatalf("after a possible start: %q", got)
	}
	w.Write([]byte("R3T-TOKEN and more"))
	if got := cw.all(); got != "Continue? [y/N] token <redacted> and more" {
		t.Fatalf("after the rest: %q", got)
	}
}

// TestWriterSecretAddedLater: a secret learned during the run applies to what
// is written from then on, including what is held back.
func TestWriterSecretAddedLater(t *testing.T) {
	s := &Set{}
	s.Add("zzzzzzzz")
	var cw chunkWriter
	w := NewWriter(&cw, s)
	w.Write([]byte("before new-secret "))
	s.Add("new-secret")
	w.Write([]byte("after new-sec"))
	w.Write([]byte("ret\n"))
	w.Flush()
	if got, want := cw.all(), "before new-secret after <redacted>\n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

func TestWriterNilSetAndErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	w.Write([]byte("plain"))
	w.Flush()
	if buf.String() != "plain" {
		t.Errorf("nil set wrote %q", buf.String())
	}
	boom := errors.New("boom")
	s := &Set{}
	s.Add("secret")
	fw := NewWriter(failWriter{boom}, s)
	if _, err := fw.Write([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("Write error %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterFd(t *testing.T) {
	if got := NewWriter(os.Stderr, nil).Fd(); got != os.Stderr.Fd() {
		t.Errorf("Fd of a file = %d, want %d", got, os.Stderr.Fd())
	}
	if got := NewWriter(&bytes.Buffer{}, nil).Fd(); got != ^uintptr(0) {
		t.Errorf("Fd of a buffer = %d, want an invalid descriptor", got)
	}
}

// TestWriterMatchesRedact: however a text is cut into writes, the stream gives
// what Redact gives for the whole text.
func TestWriterMatchesRedact(t *testing.T) {
	s := &Set{}
	s.Add("hunter22", "hunter2-extended", "tok-123456", "ab12")
	texts := []string{
		"user=admin pass=hunter22 token=tok-123456 ab12ab12 hunter2-extended hunter2-ext",
		"hunter2hunter22hunter2-extendedd tok-12345 tok-1234567",
	}
	for _, text := range texts {
		want := s.Redact(text)
		for size := 1; size <= len(text); size++ {
			var cw chunkWriter
			w := NewWriter(&cw, s)
			for i := 0; i < len(text); i += size {
				w.Write([]byte(text[i:min(i+size, len(text))]))
			}
			w.Flush()
			if got := cw.all(); got != want {
				t.Fatalf("chunks of %d: %q, want %q", size, got, want)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	a, b := &Set{}, &Set{}
	a.Add("first-secret")
	b.Add("second-secret", "pw")
	a.Merge(b)
	a.Merge(a)
	a.Merge(nil)
	var none *Set
	none.Merge(a)
	if got := a.Redact("first-secret second-secret"); got != "<redacted> <redacted>" {
		t.Errorf("after Merge: %q", got)
	}
	if a.Redact("pw") != Placeholder || a.Len() != 3 {
		t.Errorf("short secret not merged: Len %d", a.Len())
	}
}

func TestControllerEnv(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/home/op",
		"RUNBOOK_SSH_PASSPHRASE=correct horse battery",
		"RUNBOOK_VAULT_PASSWORD=vault-pass-1",
		"RUNBOOK_API_TOKEN=tok-xyz-1",
		"RUNBOOK_CACHE=/var/cache/runbook",
		"MY_PASSWORD=not ours",
	}
	got := ChildEnv(environ)
	want := []string{"PATH=/usr/bin", "HOME=/home/op", "RUNBOOK_CACHE=/var/cache/runbook", "MY_PASSWORD=not ours"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
	s := &Set{}
	s.AddControllerEnv(environ)
	if got := s.Redact("a correct horse battery, vault-pass-1, tok-xyz-1, /var/cache/runbook"); got != "a <redacted>, <redacted>, <redacted>, /var/cache/runbook" {
		t.Errorf("controller secrets not recorded: %q", got)
	}
}

// TestRedactTruncatedOutput: when a capture drops the start of a command's
// output, what it kept may begin with the end of a secret; that end is hidden
// too, and text that only looks like one elsewhere is not.
func TestRedactTruncatedOutput(t *testing.T) {
	s := &Set{}
	s.Add("S3CR3T-api-7781")
	tl := conn.NewTail(12)
	tl.Write([]byte("token: S3CR3T-api-7781 ok"))
	got := s.Redact(string(tl.Bytes()))
	if strings.Contains(got, "api-7781") || !strings.HasSuffix(got, "dropped]\n<redacted> ok") {
		t.Errorf("truncated output redacted to %q", got)
	}
	if got := s.Redact("pi-7781 is not cut here"); got != "pi-7781 is not cut here" {
		t.Errorf("an end of a secret outside truncated output: %q", got)
	}
}
