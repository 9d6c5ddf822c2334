package arg

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeOne decodes `v: SRC` into a struct holding one T and returns the value
// and the diagnostics (without the file prefix).
func decodeOne[T any](t *testing.T, src string) (T, string) {
	t.Helper()
	var holder struct {
		V T `yaml:"v"`
	}
	diags := decodeString(t, nil, "v: "+src+"\n", &holder)
	return holder.V, strings.ReplaceAll(strings.Join(diags, "\n"), "f.yml:", "")
}

func TestDuration(t *testing.T) {
	tests := []struct {
		src  string
		want time.Duration
		err  string
	}{
		{src: "90s", want: 90 * time.Second},
		{src: "1m30s", want: 90 * time.Second},
		{src: `"250ms"`, want: 250 * time.Millisecond},
		{src: "1h", want: time.Hour},
		{src: "90", err: `1:4: "v" must be a positive duration like "90s", got 90; add a unit: "90s"`},
		{src: `"90"`, err: `1:4: "v" must be a positive duration like "90s", got "90"; add a unit: "90s"`},
		{src: "1.5", err: `1:4: "v" must be a positive duration like "90s", got 1.5; add a unit: "1.5s"`},
		{src: "0s", err: `1:4: "v" must be a positive duration like "90s", got "0s"`},
		{src: "-5s", err: `1:4: "v" must be a positive duration like "90s", got "-5s"`},
		{src: "soon", err: `1:4: "v" must be a positive duration like "90s", got "soon"; units are ms, s, m and h`},
		{src: "[1s]", err: `1:4: "v" must be a positive duration like "90s", got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[Duration](t, tt.src)
			if err != tt.err || got.Std() != tt.want {
				t.Errorf("got %v, %q; want %v, %q", got, err, tt.want, tt.err)
			}
		})
	}
	if b, _ := json.Marshal(Duration(90 * time.Second)); string(b) != `"1m30s"` {
		t.Errorf("JSON = %s", b)
	}
}

func TestFileMode(t *testing.T) {
	tests := []struct {
		src  string
		want fs.FileMode
		err  string
	}{
		{src: `"0755"`, want: 0o755},
		{src: "0755", want: 0o755},
		{src: "755", want: 0o755},
		{src: "0o640", want: 0o640},
		{src: `"4755"`, want: 0o4755},
		{src: "0", want: 0},
		{src: `"0999"`, err: `1:4: "v" must be an octal file mode like "0755", at most "7777", got "0999"`},
		{src: "17777", err: `1:4: "v" must be an octal file mode like "0755", at most "7777", got 17777`},
		{src: "u+x", err: `1:4: "v" must be an octal file mode like "0755", at most "7777", got "u+x"`},
		{src: "0x1ed", err: `1:4: "v" must be an octal file mode like "0755", at most "7777", got 0x1ed`},
		{src: "true", err: `1:4: "v" must be an octal file mode like "0755", at most "7777", got true`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[FileMode](t, tt.src)
			if err != tt.err || got.Perm() != tt.want {
				t.Errorf("got %v, %q; want %v, %q", got, err, tt.want, tt.err)
			}
		})
	}
	if s := FileMode(0o755).String(); s != "0755" {
		t.Errorf("String = %s", s)
	}
}

func TestQuota(t *testing.T) {
	tests := []struct {
		src  string
		want string
		of10 int
		err  string
	}{
		{src: "0", want: "0", of10: 0},
		{src: "3", want: "3", of10: 3},
		{src: `"3"`, want: "3", of10: 3},
		{src: "25%", want: "25%", of10: 2},
		{src: `"12.5%"`, want: "12.5%", of10: 1},
		{src: "100%", want: "100%", of10: 10},
		{src: "-1", err: `1:4: "v" must not be negative, got -1`},
		{src: "0%", err: `1:4: "v" must be a percentage above 0% and at most 100%, got "0%"`},
		{src: "101%", err: `1:4: "v" must be a percentage above 0% and at most 100%, got "101%"`},
		{src: "many", err: `1:4: "v" must be a number of hosts or a percentage like "25%", got "many"`},
		{src: "1.5", err: `1:4: "v" must be a number of hosts or a percentage like "25%", got 1.5`},
		{src: "{a: 1}", err: `1:4: "v" must be a number of hosts or a percentage like "25%", got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[Quota](t, tt.src)
			if err != tt.err {
				t.Fatalf("error %q, want %q", err, tt.err)
			}
			if err == "" && (got.String() != tt.want || got.Of(10) != tt.of10 || got.Pos.Line != 1 || got.Pos.Col != 4) {
				t.Errorf("got %v (of 10: %d, pos %v), want %s (%d)", got, got.Of(10), got.Pos, tt.want, tt.of10)
			}
		})
	}
	b, _ := json.Marshal([]Quota{{Count: 2}, {Percent: 50, IsPercent: true}})
	if string(b) != `[2,"50%"]` {
		t.Errorf("JSON = %s", b)
	}
}

func TestSerial(t *testing.T) {
	tests := []struct {
		src  string
		want string
		err  string
	}{
		{src: "1", want: "1"},
		{src: "25%", want: "25%"},
		{src: `[1, "50%", "100%"]`, want: "1, 50%, 100%"},
		{src: "0", err: `1:4: "v" must be at least 1, got 0; a batch needs at least one host`},
		{src: "[]", err: `1:4: "v" must not be an empty list; write a batch size like 1 or "25%", or a list of them`},
		{src: "[1, 0, abc]", err: "1:8: \"v[1]\" must be at least 1, got 0; a batch needs at least one host\n" +
			`1:11: "v[2]" must be a number of hosts or a percentage like "25%", got "abc"`},
		{src: "[[1]]", err: `1:5: "v[0]" must be a number of hosts or a percentage like "25%", got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[Serial](t, tt.src)
			if err != tt.err || got.String() != tt.want {
				t.Errorf("got %v, %q; want %v, %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestSerialBatches(t *testing.T) {
	count := func(n int) Quota { return Quota{Count: n} }
	pct := func(p float64) Quota { return Quota{Percent: p, IsPercent: true} }
	tests := []struct {
		name   string
		serial Serial
		hosts  int
		want   []int
	}{
		{"no serial: one batch", nil, 5, []int{5}},
		{"no hosts", Serial{count(1)}, 0, nil},
		{"one at a time", Serial{count(1)}, 3, []int{1, 1, 1}},
		{"last batch takes the rest", Serial{count(2)}, 5, []int{2, 2, 1}},
		{"count above hosts", Serial{count(10)}, 3, []int{3}},
		{"canary then widen", Serial{count(1), pct(50), pct(100)}, 7, []int{1, 3, 3}},
		{"last size repeats", Serial{count(1), count(2)}, 7, []int{1, 2, 2, 2}},
		{"percent rounds down", Serial{pct(30)}, 10, []int{3, 3, 3, 1}},
		{"percent at least one", Serial{pct(10)}, 3, []int{1, 1, 1}},
		{"percent of the total, not of the rest", Serial{pct(50)}, 5, []int{2, 2, 1}},
		{"100 percent", Serial{pct(100)}, 4, []int{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.serial.Batches(tt.hosts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Batches(%d) = %v, want %v", tt.hosts, got, tt.want)
			}
			sum := 0
			for _, b := range got {
				sum += b
			}
			if sum != tt.hosts {
				t.Errorf("batches hold %d hosts, want %d", sum, tt.hosts)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		src  string
		want Argv
		err  string
	}{
		{src: `etcdctl endpoint health`, want: Argv{"etcdctl", "endpoint", "health"}},
		{src: `"etcdctl  put k 'a b'"`, want: Argv{"etcdctl", "put", "k", "a b"}},
		{src: `'echo "x \"y\" \$HOME" z\ w'`, want: Argv{"echo", `x "y" $HOME`, "z w"}},
		{src: `'echo "a\nb" ""'`, want: Argv{"echo", `a\nb`, ""}},
		{src: `'echo $HOME *'`, want: Argv{"echo", "$HOME", "*"}},
		{src: "[etcdctl, 'a b', 3]", want: Argv{"etcdctl", "a b", "3"}},
		{src: `"echo 'x"`, err: `1:5: "v" has an unbalanced ' quote`}, // escapes may shift a "..." scalar: no offset
		{src: `'echo "x'`, err: `1:10: "v" has an unbalanced " quote`},
		{src: `'echo x\'`, err: `1:11: "v" ends with a lone backslash`},
		{src: `""`, err: `1:4: "v" must not be empty`},
		{src: `"   "`, err: `1:4: "v" must not be empty`},
		{src: `[]`, err: `1:4: "v" must not be empty`},
		{src: `[a, [b]]`, err: `1:8: "v[1]" must be a string, got a list`},
		{src: `{a: b}`, err: `1:4: "v" must be a command (a string or a list of words), got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[Argv](t, tt.src)
			if err != tt.err {
				t.Fatalf("error %q, want %q", err, tt.err)
			}
			if err == "" && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStringList(t *testing.T) {
	tests := []struct {
		src  string
		want StringList
		err  string
	}{
		{src: "a", want: StringList{"a"}},
		{src: "[a, b]", want: StringList{"a", "b"}},
		{src: "[]", want: StringList{}},
		{src: "[a, {b: c}]", err: `1:8: "v[1]" must be a string, got a mapping`},
		{src: "{a: b}", err: `1:4: "v" must be a string or a list of strings, got a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[StringList](t, tt.src)
			if err != tt.err {
				t.Fatalf("error %q, want %q", err, tt.err)
			}
			if err == "" && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpr(t *testing.T) {
	tests := []struct {
		src  string
		want string
		col  int
		err  string
	}{
		{src: "x == 1", want: "x == 1", col: 4},
		{src: `'x == "a"'`, want: `x == "a"`, col: 5},
		{src: "true", want: "true", col: 4},
		{src: `""`, err: `1:4: "v" must be an expression, got an empty string`},
		{src: "[x]", err: `1:4: "v" must be an expression, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := decodeOne[Expr](t, tt.src)
			if err != tt.err {
				t.Fatalf("error %q, want %q", err, tt.err)
			}
			if err == "" && (got.Src != tt.want || got.Pos.Col != tt.col || got.Pos.Line != 1) {
				t.Errorf("got %q at %v, want %q at column %d", got.Src, got.Pos, tt.want, tt.col)
			}
		})
	}
}
