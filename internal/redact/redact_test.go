package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	s := &Set{}
	s.Add("hunter2", "hunter2-extended", "pw", "", "   ", "line-one\n  line-two  \nx")
	tests := []struct {
		name, in, want string
	}{
		{"plain", "password is hunter2.", "password is <redacted>."},
		{"twice", "hunter2hunter2", "<redacted><redacted>"},
		{"longest first", "token=hunter2-extended", "token=<redacted>"},
		{"short whole", "pw", "<redacted>"},
		{"short inside is kept", "pwd and pw are words", "pwd and pw are words"},
		{"multi-line whole", "key: line-one\n  line-two  \nx", "key: <redacted>"},
		{"multi-line one line", "error near line-two", "error near <redacted>"},
		{"multi-line short line", "x marks", "x marks"},
		{"nothing", "all clear", "all clear"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// "" and "   " are ignored; the multi-line secret adds itself, two long lines and "x".
	if got, want := s.Len(), 7; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestNilSet(t *testing.T) {
	var s *Set
	if got := s.Redact("hunter2"); got != "hunter2" {
		t.Errorf("nil Redact = %q", got)
	}
	in := map[string]any{"a": []string{"x"}}
	got := s.RedactValue(in)
	want := map[string]any{"a": []any{"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nil RedactValue = %#v, want %#v", got, want)
	}
	if s.Len() != 0 {
		t.Error("nil Len != 0")
	}
	err := errors.New("boom")
	if s.Error(err) != err {
		t.Error("nil Error must return err itself")
	}
}

type creds struct {
	User     string `json:"user"`
	Password string `json:"password"`
	hidden   string
}

type valueErr struct{ msg string }

func (e valueErr) Error() string { return e.msg }

func TestRedactValue(t *testing.T) {
	s := &Set{}
	s.Add("s3cret", "42", "9876")
	when := time.Date(2026, 11, 24, 2, 39, 55, 0, time.UTC)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"string", "x s3cret y", "x <redacted> y"},
		{"bool", true, true},
		{"int kept", 7, 7},
		{"int short secret", 42, Placeholder},
		{"float equal to a long secret", 9876.0, Placeholder},
		{"number holding a secret's digits kept", 19876.5, 19876.5},
		{"time kept", when, when},
		{"duration kept", 3 * time.Second, 3 * time.Second},
		{"bytes become text", []byte("out: s3cret\n"), "out: <redacted>\n"},
		{"nested map and list", map[string]any{
			"stdout": "s3cret",
			"lines":  []any{"a", "b s3cret", map[string]any{"deep": []any{"42", "420"}}},
			"rc":     0,
		}, map[string]any{
			"stdout": "<redacted>",
			"lines":  []any{"a", "b <redacted>", map[string]any{"deep": []any{Placeholder, "420"}}},
			"rc":     0,
		}},
		{"typed containers", map[string][]string{"argv": {"curl", "-u", "me:s3cret"}},
			map[string]any{"argv": []any{"curl", "-u", "me:<redacted>"}}},
		{"map keys", map[string]string{"s3cret": "v"}, map[string]any{"<redacted>": "v"}},
		{"struct via json", creds{User: "root", Password: "s3cret", hidden: "s3cret"},
			map[string]any{"user": "root", "password": "<redacted>"}},
		{"pointer", &creds{User: "s3cret"}, map[string]any{"user": "<redacted>", "password": ""}},
		{"error value", fmt.Errorf("login with s3cret: %w", fs.ErrPermission),
			"login with <redacted>: permission denied"},
		{"error struct", valueErr{"bad s3cret"}, "bad <redacted>"},
		{"unencodable", map[string]any{"ch": make(chan int)}, map[string]any{"ch": nil}},
		{"nil map", map[string]any(nil), nil},
		{"nil slice", []string(nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.RedactValue(tt.in)
			if tt.name == "unencodable" {
				// A channel has no JSON form; what matters is that its text is
				// redacted and the call does not panic.
				m := got.(map[string]any)
				if str, ok := m["ch"].(string); !ok || !strings.HasPrefix(str, "0x") {
					t.Errorf("channel became %#v, want its redacted address text", m["ch"])
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RedactValue(%#v)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactValueCopies(t *testing.T) {
	var s *Set
	inner := []any{"a"}
	in := map[string]any{"list": inner, "m": map[string]any{"k": "v"}}
	out := s.RedactMap(in)
	inner[0] = "changed"
	in["m"].(map[string]any)["k"] = "changed"
	in["new"] = 1
	want := map[string]any{"list": []any{"a"}, "m": map[string]any{"k": "v"}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("copy shares memory with the input: %#v", out)
	}
	if s.RedactMap(nil) != nil {
		t.Error("RedactMap(nil) must be nil")
	}
}

func TestRedactValueCycle(t *testing.T) {
	type node struct{ Next any }
	n := &node{}
	n.Next = n
	s := &Set{}
	s.Add("secret")
	// A cycle cannot be JSON-encoded; the walk must stop rather than hang.
	_ = s.RedactValue(map[string]any{"n": n})
}

func TestAddValue(t *testing.T) {
	s := &Set{}
	s.AddValue(map[string]any{
		"url":   "https://api.example",
		"token": "tok-123456",
		"pin":   1234,
		"short": "m1",
		"port":  22,
		"flags": []any{true, nil, "--verbose"},
		"creds": creds{User: "admin", Password: "pa55word", hidden: "not-added"},
		"raw":   []byte("bytes-secret"),
	})
	for _, sec := range []string{"https://api.example", "tok-123456", "1234", "--verbose", "admin", "pa55word", "bytes-secret"} {
		if got := s.Redact("<" + sec + ">"); got != "<"+Placeholder+">" {
			t.Errorf("%q was not added: Redact gives %q", sec, got)
		}
	}
	for _, kept := range []string{"true", "not-added", "m1", "22"} {
		if got := s.Redact(kept); got != kept {
			t.Errorf("%q must not be a secret, Redact gives %q", kept, got)
		}
	}
}

func TestError(t *testing.T) {
	s := &Set{}
	s.Add("s3cret")
	base := &fs.PathError{Op: "open", Path: "/etc/s3cret", Err: fs.ErrNotExist}
	err := s.Error(fmt.Errorf("step: %w", base))
	if got, want := err.Error(), "step: open /etc/<redacted>: file does not exist"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is lost the chain")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Error("errors.As lost the chain")
	}
	plain := errors.New("nothing here")
	if s.Error(plain) != plain {
		t.Error("an error with nothing to redact must be returned as it is")
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) must be nil")
	}
}

func TestCensored(t *testing.T) {
	a, b := Censored(), Censored()
	a["x"] = 1
	if len(b) != 1 || b["censored"] != CensoredMessage {
		t.Errorf("Censored() shares its map or says %#v", b)
	}
}

func TestConcurrent(t *testing.T) {
	s := &Set{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 100 {
				s.Add(fmt.Sprintf("secret-%d-%d", i, j))
			}
		}()
		go func() {
			defer wg.Done()
			for j := range 100 {
				s.Redact(fmt.Sprintf("text secret-%d-%d", i, j))
				s.RedactValue(map[string]any{"k": []any{"secret-0-0"}})
			}
		}()
	}
	wg.Wait()
	if got := s.Redact("secret-7-99 secret-0-0"); got != "<redacted> <redacted>" {
		t.Errorf("after concurrent adds: %q", got)
	}
}

// A secret is hidden also as the text that quotes or escapes it shows it: a
// command line quoted for a shell, an error made with %q, a JSON document, a
// URL. Passwords hold quotes, backslashes and spaces.
func TestRedactEncodedForms(t *testing.T) {
	const sec = `it's "q" \ <&> é`
	s := &Set{}
	s.Add(sec, "plainword")
	shell := "'" + strings.ReplaceAll(sec, "'", `'\''`) + "'"
	jsonHTML, _ := json.Marshal("pw=" + sec)
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"pw": sec})
	tests := []struct{ name, in string }{
		{"as is", "pw=" + sec},
		{"shell-quoted", "sh -c 'echo \"$0\"' " + shell},
		{"shell-quoted inside a word", "'--password=" + strings.ReplaceAll(sec, "'", `'\''`) + "'"},
		{"Go %q", fmt.Sprintf("left as they are: %q", "step "+sec)},
		{"Go %+q", fmt.Sprintf("%+q", sec)},
		{"JSON", string(jsonHTML)},
		{"JSON without HTML escapes", b.String()},
		{"URL query", "GET /?pw=" + url.QueryEscape(sec)},
		{"URL path", "GET /" + url.PathEscape(sec)},
		{"Python repr", `{'pw': 'it\'s "q" \\ <&> é'}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Redact(tt.in)
			if !strings.Contains(got, Placeholder) || strings.Contains(got, "<&>") || strings.Contains(got, `\u003c`) || strings.Contains(got, "%3C") {
				t.Errorf("Redact(%s) = %s: the secret shows", tt.in, got)
			}
		})
	}
	// A secret without characters to escape has no other form.
	if got := s.Redact(`"plainword" plainword%20`); got != `"<redacted>" <redacted>%20` {
		t.Errorf("plain secret: %s", got)
	}
	if got, want := s.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d: the encoded forms are not secrets of their own", got, want)
	}
	// The stream redacts the encoded forms too, split across writes.
	var out strings.Builder
	w := NewWriter(&out, s)
	q := fmt.Sprintf("%q\n", sec)
	_, _ = w.Write([]byte(q[:6]))
	_, _ = w.Write([]byte(q[6:]))
	_ = w.Flush()
	if out.String() != "\"<redacted>\"\n" {
		t.Errorf("stream: %q", out.String())
	}
}

// A message that quotes only the start of a text (and says so with an
// ellipsis) may cut a secret short: what is left of it is hidden too, as is
// the end of one after a cut at the start.
func TestRedactCut(t *testing.T) {
	s := &Set{}
	s.Add("Zq9-0123456789-tail", "multi  space\tsecret")
	tests := []struct{ name, in, want string }{
		{"start before …", "item Zq9-01234… (loop_index 0)", "item <redacted>… (loop_index 0)"},
		{"start before ...", "stderr: 0000Zq9-0123...", "stderr: 0000<redacted>..."},
		{"end after ...", "...89-tail: exit 1", "...<redacted>: exit 1"},
		{"end after a dropped start", "[runbook: output truncated, 9 earlier bytes dropped]\n456789-tail\n", "[runbook: output truncated, 9 earlier bytes dropped]\n<redacted>\n"},
		{"whole and cut", "Zq9-0123456789-tail Zq9-0…", "<redacted> <redacted>…"},
		{"too short a part is kept", "Zq9… and ...ail", "Zq9… and ...ail"},
		{"not at a cut", "Zq9-0123 and 89-tail", "Zq9-0123 and 89-tail"},
		{"on one line", "item multi space secret", "item <redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
