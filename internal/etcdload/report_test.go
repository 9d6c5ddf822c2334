package etcdload

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

// sampleReports are runs played with a fake clock, one per kind of verdict.
func sampleReports(t *testing.T) map[string]*Report {
	cfg := Config{Prefix: "/load/", RunID: "20261124T120000Z-abcdef", Rate: 200, Duration: time.Minute, Timeout: 2 * time.Second, MaxInFlight: 64}
	eps := []string{"http://127.0.0.11:2379", "http://127.0.0.12:2379", "http://127.0.0.13:2379"}
	outage := play(t, []event{
		begin(0, 1), ack(1500*time.Microsecond, 1),
		begin(5*ms1, 2), ack(7*ms1, 2),
		begin(10*ms1, 3), fail(2010*ms1, 3, "context deadline exceeded"),
		begin(15*ms1, 4), fail(20*ms1, 4, "etcdserver: leader changed"),
		begin(25*ms1, 5), fail(30*ms1, 5, "etcdserver: leader changed"),
		begin(35*ms1, 6), fail(36*ms1, 6, "etcdserver: no leader"),
		begin(40*ms1, 7), fail(41*ms1, 7, "etcdserver: request timed out"),
		begin(2100*ms1, 8), ack(3350*ms1, 8),
		begin(3400*ms1, 9), ack(3402*ms1, 9),
		stop(4 * time.Second),
	}).Stats()
	clean := play(t, []event{begin(0, 1), ack(2*ms1, 1), begin(5*ms1, 2), ack(6*ms1, 2), stop(10 * ms1)}).Stats()
	down := play(t, []event{begin(0, 1), fail(2*time.Second, 1, "context deadline exceeded"), stop(3 * time.Second)}).Stats()
	return map[string]*Report{
		"outage-ok": NewReport(cfg, eps, StopDuration, outage, Verification{Checked: 4, FailedApplied: 1}),
		"lost":      NewReport(cfg, eps[:1], StopSignal, clean, Verification{Checked: 2, Lost: 1, LostKeys: []string{cfg.Key(2)}}),
		"unverified": NewReport(cfg, eps[:1], StopMaxWrites, clean,
			Verification{Checked: 1, Err: errors.New("reading back /load/* after /load/000000000001: context deadline exceeded")}),
		"down": NewReport(cfg, eps[:1], StopDuration, down, Verification{}),
	}
}

func TestReportText(t *testing.T) {
	for name, r := range sampleReports(t) {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "summary-"+name+".golden", b.String())
		})
	}
}

func TestReportOK(t *testing.T) {
	want := map[string]bool{"outage-ok": true, "lost": false, "unverified": false, "down": false}
	for name, r := range sampleReports(t) {
		if r.OK() != want[name] {
			t.Errorf("%s: OK() = %v, want %v (%s)", name, r.OK(), want[name], r.Verdict())
		}
	}
}

func TestReportFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, r := range sampleReports(t) {
		path := filepath.Join(dir, name+".json")
		if err := r.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		got, err := ReadReport(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: read back\n%+v\nwant\n%+v", name, got, r)
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("%s: the temporary file is left: %v", name, err)
		}
	}
	golden(t, "report-outage-ok.json", func() string {
		var b bytes.Buffer
		sampleReports(t)["outage-ok"].WriteJSON(&b)
		return b.String()
	}())
}

func TestReadReportErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"bad-syntax.json", "bad-syntax.json:3:17: invalid character '}'"},
		{"bad-type.json", "bad-type.json:4:32: json: cannot unmarshal string into Go struct field"},
		{"bad-field.json", `bad-field.json: json: unknown field "writez"`},
		{"bad-version.json", "bad-version.json: report version 7, this etcd-load reads version 1"},
		{"missing.json", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := ReadReport(filepath.Join("testdata", tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadReport() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReportWriteFileFails(t *testing.T) {
	r := sampleReports(t)["lost"]
	err := r.WriteFile(filepath.Join(t.TempDir(), "no", "such", "dir", "r.json"))
	if err == nil || !strings.Contains(err.Error(), "writing the report") {
		t.Errorf("WriteFile into a missing folder = %v, want an error that says so", err)
	}
}
