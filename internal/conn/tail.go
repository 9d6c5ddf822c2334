package conn

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Tail keeps the last limit bytes written to it and counts what it dropped, so
// a chatty command cannot eat the controller's memory. Both transports
// capture output through it. It is safe for concurrent use: a killed
// session's copier may still write while Run reads what was kept.
type Tail struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped int64
}

// NewTail returns a Tail that keeps limit bytes.
func NewTail(limit int) *Tail { return &Tail{limit: limit} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.limit {
		t.dropped += int64(len(t.buf) + len(p) - t.limit)
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	// Compact only at twice the limit: amortised O(1) per byte.
	if len(t.buf) > 2*t.limit {
		cut := len(t.buf) - t.limit
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return n, nil
}

// ReadFrom copies r into the tail through a pooled buffer (see CopyPooled).
func (t *Tail) ReadFrom(r io.Reader) (int64, error) { return CopyPooled(t, r) }

// Bytes returns the kept tail, preceded by a marker line when bytes were dropped.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	dropped := t.dropped
	if len(b) > t.limit {
		dropped += int64(len(b) - t.limit)
		b = b[len(b)-t.limit:]
	}
	if dropped == 0 {
		return bytes.Clone(b)
	}
	marker := fmt.Sprintf("[runbook: output truncated, %d earlier bytes dropped]\n", dropped)
	return append([]byte(marker), b...)
}

// copyBufs are the buffers command output is copied through. Without them,
// io.Copy would allocate 32 KiB twice per command, and the garbage collector's
// work on a run over hundreds of hosts would cost more than SSH itself.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// CopyPooled copies r to w through a pooled buffer, as io.Copy would.
func CopyPooled(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
