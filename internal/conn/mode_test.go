package conn

import (
	"io/fs"
	"testing"
)

func TestUnixMode(t *testing.T) {
	tests := []struct {
		in   fs.FileMode
		want uint32
	}{
		{0o644, 0o644},
		{0o4755, 0o4755},
		{fs.ModeSetuid | 0o755, 0o4755},
		{fs.ModeSetgid | fs.ModeSticky | 0o770, 0o3770},
		{0o1777, 0o1777},
		{fs.ModeDir | 0o755, 0o755},
	}
	for _, tt := range tests {
		if got := UnixMode(tt.in); got != tt.want {
			t.Errorf("UnixMode(%v) = %#o, want %#o", tt.in, got, tt.want)
		}
	}
}
