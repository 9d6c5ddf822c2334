package redact

import (
	"bytes"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Writer redacts a stream: what is written to it reaches the underlying writer
// with every secret of its Set replaced, also a secret that arrives split over
// two or more writes. To catch those, it holds back the shortest end of what it
// was given that could still grow into a secret (a prefix of one), and nothing
// else, so that a prompt or a line that cannot be part of a secret is shown at
// once. Flush writes what is held back when the stream ends.
//
// Secrets shorter than MinSubstring are replaced only where a whole string is
// one; a stream has no whole strings, so a Writer leaves them alone. A Writer
// is safe for concurrent use; each Write is passed on in one Write.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	set  *Set
	held []byte
}

// NewWriter returns a Writer that redacts s's secrets, as they are when each
// Write comes (secrets added later apply from then on), on their way to w.
func NewWriter(w io.Writer, s *Set) *Writer { return &Writer{w: w, set: s} }

// Write redacts p and what was held back before it, and writes what cannot be
// the start of a secret. It reports len(p) written unless the underlying
// writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = append(w.held, p...)
	out, keep := w.set.scan(w.held, false)
	w.held = append(w.held[:0], keep...)
	if len(out) == 0 {
		return len(p), nil
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back, redacted: the stream ended, so a prefix of a
// secret is only text.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	out, _ := w.set.scan(w.held, true)
	w.held = w.held[:0]
	if len(out) == 0 {
		return nil
	}
	_, err := w.w.Write(out)
	return err
}

// Fd is the descriptor of the underlying writer when it has one, so that a
// view can still tell it writes to a terminal and ask for its size; otherwise
// an invalid descriptor, which no terminal has.
func (w *Writer) Fd() uintptr {
	if f, ok := w.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// streamIndex is the long secrets of a Set by their first byte, longest first,
// as the stream scan needs them.
type streamIndex struct {
	byFirst map[byte][]string
	longest int
	// For the part of a secret left beside a cut (Set.cutTail, cutHead):
	// the secrets sorted, and each reversed (byte by byte), sorted, so that
	// a start or an end of one is found by a binary search.
	sorted, reversed []string
	last             [256]bool // the last bytes of the secrets
}

func (s *Set) index() *streamIndex {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	idx := s.stream
	s.mu.RUnlock()
	if idx != nil {
		return idx
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream
	}
	idx = &streamIndex{byFirst: map[byte][]string{}}
	for sec := range s.substrings() {
		idx.byFirst[sec[0]] = append(idx.byFirst[sec[0]], sec)
		idx.longest = max(idx.longest, len(sec))
		idx.sorted = append(idx.sorted, sec)
		idx.reversed = append(idx.reversed, reverse(sec))
		idx.last[sec[len(sec)-1]] = true
	}
	sort.Strings(idx.sorted)
	sort.Strings(idx.reversed)
	for _, list := range idx.byFirst {
		sort.Slice(list, func(i, j int) bool {
			if len(list[i]) != len(list[j]) {
				return len(list[i]) > len(list[j])
			}
			return list[i] < list[j]
		})
	}
	s.stream = idx
	return idx
}

// scan redacts buf as Redact would, and, unless final, stops at the first
// position where a secret may begin but the text ends before it could be
// told: that rest is returned to be held back. A longer secret wins over a
// shorter one at the same position, as in Redact, so a position is undecided
// while any longer secret could still match there.
func (s *Set) scan(buf []byte, final bool) (out, keep []byte) {
	idx := s.index()
	if idx == nil || len(idx.byFirst) == 0 {
		return bytes.Clone(buf), nil
	}
	var b bytes.Buffer
	last := 0
	for i := 0; i < len(buf); {
		cands := idx.byFirst[buf[i]]
		if len(cands) == 0 {
			i++
			continue
		}
		rest := buf[i:]
		if !final && len(rest) < idx.longest && couldGrow(cands, rest) {
			b.Write(buf[last:i])
			return b.Bytes(), buf[i:]
		}
		matched := 0
		for _, sec := range cands {
			if bytes.HasPrefix(rest, []byte(sec)) {
				matched = len(sec)
				break
			}
		}
		if matched == 0 {
			i++
			continue
		}
		b.Write(buf[last:i])
		b.WriteString(Placeholder)
		i += matched
		last = i
	}
	b.Write(buf[last:])
	return b.Bytes(), nil
}

// couldGrow reports whether rest is a proper prefix of one of the secrets.
func couldGrow(secrets []string, rest []byte) bool {
	for _, sec := range secrets {
		if len(sec) > len(rest) && sec[:len(rest)] == string(rest) {
			return true
		}
	}
	return false
}

// reverse returns s with its bytes in the opposite order.
func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// extends reports whether a string of sorted, which is sorted, begins with
// p and is longer.
func extends(sorted []string, p string) bool {
	i := sort.SearchStrings(sorted, p)
	for j := i; j < len(sorted) && j <= i+1; j++ {
		if len(sorted[j]) > len(p) && strings.HasPrefix(sorted[j], p) {
			return true
		}
	}
	return false
}
