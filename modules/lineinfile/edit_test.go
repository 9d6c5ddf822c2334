package lineinfile

import "testing"

func TestEdit(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tt := range []struct {
		name       string
		m          Module
		text, want string
	}{
		{"replace the last match", Module{Regexp: "^A=", Line: s("A=9")}, "A=1\nB=2\nA=3\n", "A=1\nB=2\nA=9\n"},
		{"already there by regexp", Module{Regexp: "^A=", Line: s("A=1")}, "A=1\n", "A=1\n"},
		{"already there by line", Module{Regexp: "^X=", Line: s("A=1")}, "A=1\n", "A=1\n"},
		{"added at the end", Module{Line: s("C=3")}, "A=1\nB=2\n", "A=1\nB=2\nC=3\n"},
		{"added to a file without a final newline", Module{Line: s("C=3")}, "A=1", "A=1\nC=3\n"},
		{"added to an empty file", Module{Line: s("C=3")}, "", "C=3\n"},
		{"insertafter the last match", Module{Line: s("C=3"), InsertAfter: "^A"}, "A=1\nA=2\nB=2\n", "A=1\nA=2\nC=3\nB=2\n"},
		{"insertafter without a match goes at the end", Module{Line: s("C=3"), InsertAfter: "^Z"}, "A=1\n", "A=1\nC=3\n"},
		{"insertbefore the last match", Module{Line: s("C=3"), InsertBefore: "^B"}, "A=1\nB=2\n", "A=1\nC=3\nB=2\n"},
		{"insertbefore BOF", Module{Line: s("C=3"), InsertBefore: "BOF"}, "A=1\n", "C=3\nA=1\n"},
		{"absent by regexp, every match", Module{State: "absent", Regexp: "^A="}, "A=1\nB=2\nA=3\n", "B=2\n"},
		{"absent by line", Module{State: "absent", Line: s("B=2")}, "A=1\nB=2\n", "A=1\n"},
		{"absent, nothing matches", Module{State: "absent", Regexp: "^Z"}, "A=1\n", "A=1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.m.Defaults().edit(tt.text)
			if err != nil || got != tt.want {
				t.Errorf("edit(%q) = %q, %v; want %q", tt.text, got, err, tt.want)
			}
		})
	}
}
