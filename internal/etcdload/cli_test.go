package etcdload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestMainUsageErrors(t *testing.T) {
	dir := t.TempDir()
	ep := "-endpoints=http://127.0.0.1:1"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no endpoints", nil, "-endpoints: no endpoint; give them like http://127.0.0.11:2379"},
		{"endpoint without scheme", []string{"-endpoints", "127.0.0.11:2379"}, `endpoint "127.0.0.11:2379" is not a URL like http://127.0.0.11:2379`},
		{"endpoint without port", []string{"-endpoints", "http://127.0.0.11"}, `endpoint "http://127.0.0.11" is not a URL`},
		{"endpoint with a path", []string{"-endpoints", "http://127.0.0.11:2379/v3"}, `endpoint "http://127.0.0.11:2379/v3" is not a URL`},
		{"bad rate", []string{ep, "-rate", "0"}, "rate 0 must be more than 0"},
		{"bad duration", []string{ep, "-duration", "-1s"}, "duration -1s must be more than 0"},
		{"two errors at once", []string{ep, "-timeout", "0s", "-max-in-flight", "0"}, "timeout 0s must be more than 0, like 2s; max in flight 0 must be at least 1"},
		{"bad verify timeout", []string{ep, "-verify-timeout", "0s"}, "-verify-timeout 0s must be more than 0"},
		{"unknown flag", []string{ep, "-rat", "3"}, "flag provided but not defined: -rat"},
		{"stray argument", []string{ep, "now"}, `unexpected argument "now"`},
		{"unwritable report", []string{ep, "-out", filepath.Join(dir, "missing", "r.json")}, "-out: open"},
		{"report-from with other flags", []string{"-report-from", "r.json", "-rate", "5"}, "-report-from prints a saved report and takes no other flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	code, _, stderr := runMain(t, "-h")
	if code != ExitOK || !strings.Contains(stderr, "usage: etcd-load") || !strings.Contains(stderr, "-max-writes") {
		t.Errorf("-h: exit %d, stderr %q; want 0 and the usage with the flags", code, stderr)
	}
}

func TestMainReportFrom(t *testing.T) {
	dir := t.TempDir()
	for name, r := range sampleReports(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			if err := r.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runMain(t, "-report-from", path)
			want, err := os.ReadFile(filepath.Join("testdata", "summary-"+name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			if stdout != string(want) {
				t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
			}
			wantCode := ExitFailed
			if r.OK() {
				wantCode = ExitOK
			}
			if code != wantCode || stderr != "" {
				t.Errorf("exit %d, stderr %q; want %d and nothing", code, stderr, wantCode)
			}
		})
	}
	t.Run("not a report", func(t *testing.T) {
		code, stdout, stderr := runMain(t, "-report-from", filepath.Join("testdata", "bad-syntax.json"))
		if code != ExitFailed || stdout != "" || !strings.Contains(stderr, "bad-syntax.json:3:17:") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the place of the error", code, stdout, stderr)
		}
	})
}
