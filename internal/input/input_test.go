package input

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("a", n)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		// A pipe that never ends, as /dev/zero: read up to the limit only.
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				return
			}
		}
	}()

	tests := []struct {
		name    string
		path    string
		limit   int64
		wantLen int
		tooBig  bool
		err     string
	}{
		{"under", write("under", 99), 100, 99, false, ""},
		{"at the limit", write("at", 100), 100, 100, false, ""},
		{"over by one", write("over", 101), 100, 0, true, ""},
		{"empty", write("empty", 0), 100, 0, false, ""},
		{"dev zero", "/dev/zero", 1 << 20, 0, true, ""},
		{"endless pipe", fifo, 1 << 16, 0, true, ""},
		{"directory", dir, 100, 0, false, "is a directory"},
		{"missing", filepath.Join(dir, "nope"), 100, 0, false, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ReadFileLimit(tt.path, tt.limit)
			var tl *TooLargeError
			switch {
			case tt.tooBig:
				if !errors.As(err, &tl) || tl.Limit != tt.limit || tl.Path != tt.path {
					t.Fatalf("err = %v, want a TooLargeError", err)
				}
				if !strings.Contains(err.Error(), Size(tt.limit)) {
					t.Errorf("message %q does not name the limit", err)
				}
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
			default:
				if err != nil || len(data) != tt.wantLen {
					t.Fatalf("got %d bytes, %v; want %d", len(data), err, tt.wantLen)
				}
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{4 << 20: "4 MiB", 1 << 20: "1 MiB", 512 << 10: "512 KiB", 1000: "1000 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
