package hostfile

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, tt := range []struct {
		name           string
		before, after  string
		known, existed bool
		want, wantNot  []string
	}{
		{name: "a changed line", before: "a\nb\nc\n", after: "a\nB\nc\n", known: true, existed: true,
			want: []string{"--- /etc/x (before)\n", "+++ /etc/x (after)\n", "@@ -1,3 +1,3 @@\n", "-b\n", "+B\n", " a\n"}},
		{name: "a new file", after: "x\n", want: []string{"--- /dev/null\n", "@@ -0,0 +1 @@\n", "+x\n"}},
		{name: "a newline added at the end", before: "x", after: "x\n", known: true, existed: true,
			want: []string{"-x\n\\ No newline at end of file\n", "+x\n"}},
		{name: "binary", before: "a\x00", after: "b", known: true, existed: true, want: []string{"binary content"}, wantNot: []string{"---"}},
		{name: "too large to read", before: "", after: "b", existed: true, want: []string{"diff not shown"}},
		{name: "same", before: "a\n", after: "a\n", known: true, existed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff("/etc/x", []byte(tt.before), tt.known, tt.existed, []byte(tt.after))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("diff lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("diff has %q:\n%s", w, got)
				}
			}
			if len(tt.want) == 0 && got != "" {
				t.Errorf("diff = %q, want none", got)
			}
		})
	}
}
