package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/conntest"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/eval"
	"github.com/runbookhq/runbook/modules"
	"github.com/runbookhq/runbook/modules/arg"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func localHost(t *testing.T) *modules.Host {
	return &modules.Host{Name: "etcd-1", Addr: "127.0.0.1", Conn: local.New(), Log: zerolog.Nop(),
		RunbookDir: t.TempDir(), Vars: map[string]any{"want": "3.7"}}
}

// compiled is an Expr as the loader leaves it: compiled with result in scope.
func compiled(t *testing.T, src string) arg.Expr {
	t.Helper()
	p, ds := eval.Compile(src, diag.Pos{File: "rb.yml", Line: 7, Col: 13}, &eval.Env{Result: true, Vars: map[string]any{"want": ""}}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	return arg.Expr{Src: src, Pos: p.Pos, Program: p}
}

// roundTrip returns data as the journal gives it back after a resume.
func roundTrip(t *testing.T, data map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("result data is not JSON-safe: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name     string
		m        Module
		wantErr  string
		wantData map[string]any
	}{
		{"exit 0 passes by default", Module{Command: arg.Argv{"sh", "-c", "echo hello; echo warn >&2"}}, "",
			map[string]any{"rc": 0, "stdout": "hello", "stderr": "warn"}},
		{"exit 1 fails by default", Module{Command: arg.Argv{"sh", "-c", "echo nope >&2; exit 1"}},
			"expect `result.rc == 0` (the default) is false: sh -c 'echo nope >&2; exit 1' gave rc 1, stdout \"\", stderr \"nope\"",
			map[string]any{"rc": 1, "stdout": "", "stderr": "nope"}},
		{"missing program is rc 127", Module{Command: arg.Argv{"/nonexistent/etcd", "--version"}}, "gave rc 127", nil},
		{"compiled expect holds", Module{Command: arg.Argv{"echo", "etcd Version: 3.7.3"}, Expect: compiled(t, `result.stdout contains want`)}, "", nil},
		{"compiled expect fails with position and values", Module{Command: arg.Argv{"echo", "etcd Version: 3.6.0"}, Expect: compiled(t, `result.stdout contains "3.7.3"`)},
			"rb.yml:7:13: expect `result.stdout contains \"3.7.3\"` is false: echo 'etcd Version: 3.6.0' gave rc 0, stdout \"etcd Version: 3.6.0\"", nil},
		{"expect may accept a failure", Module{Command: arg.Argv{"sh", "-c", "exit 3"}, Expect: compiled(t, `result.rc == 3`)}, "", nil},
		{"uncompiled expect is compiled here", Module{Command: arg.Argv{"echo", "x"}, Expect: arg.Expr{Src: `result.stdout == "y"`}},
			"expect `result.stdout == \"y\"` is false", nil},
		{"uncompiled expect that does not compile", Module{Command: arg.Argv{"echo", "x"}, Expect: arg.Expr{Src: `result.stdout ==`}},
			"expect: ", nil},
		{"expect error names the values", Module{Command: arg.Argv{"echo", "x"}, Expect: compiled(t, `result.nothing.deeper == 1`)},
			"gave rc 0, stdout \"x\"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := localHost(t)
			res, err := tt.m.Run(testCtx(t), h)
			checkErr(t, err, tt.wantErr)
			if res.Changed {
				t.Error("a check reported a change")
			}
			for k, v := range tt.wantData {
				if res.Data[k] != v {
					t.Errorf("result.%s = %#v, want %#v", k, res.Data[k], v)
				}
			}
			roundTrip(t, res.Data)
			// --check runs the same probe with the same verdict.
			cres, cerr := tt.m.Check(testCtx(t), h)
			if fmt.Sprint(cerr) != fmt.Sprint(err) || fmt.Sprint(cres) != fmt.Sprint(res) {
				t.Errorf("Check = %v, %v; Run = %v, %v", cres, cerr, res, err)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("err = %v, want none", err)
	case want != "" && err == nil:
		t.Fatalf("err = nil, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("err = %v\nwant it to contain %q", err, want)
	}
}

// TestExpectSeesTheStepScope: expect sees registered results and vars from
// the engine's scope, and setting result there does not leak into it.
func TestExpectSeesTheStepScope(t *testing.T) {
	p, ds := eval.Compile(`result.stdout == before.stdout + "-" + suffix`, diag.Pos{}, &eval.Env{Result: true, Registered: []string{"before"},
		Vars: map[string]any{"suffix": ""}}, eval.Bool)
	if err := ds.Err(); err != nil {
		t.Fatal(err)
	}
	scope := &eval.Scope{Vars: map[string]any{"suffix": "new"}, Registered: map[string]any{"before": map[string]any{"stdout": "3.7.3"}}}
	h := localHost(t)
	h.Scope = scope
	m := &Module{Command: arg.Argv{"echo", "3.7.3-new"}, Expect: arg.Expr{Src: p.Src, Program: p}}
	if _, err := m.Run(testCtx(t), h); err != nil {
		t.Fatal(err)
	}
	if scope.Result != nil {
		t.Error("expect set result in the engine's scope")
	}
}

func TestCommandThroughConn(t *testing.T) {
	t.Run("become is passed on", func(t *testing.T) {
		f := conntest.New(t)
		f.On(conntest.Exact("etcdctl", "endpoint", "health")).Stdout("healthy\n")
		h := &modules.Host{Name: "etcd-1", Conn: f, Become: true, BecomeUser: "etcd", Log: zerolog.Nop()}
		if _, err := (&Module{Command: arg.Argv{"etcdctl", "endpoint", "health"}}).Run(testCtx(t), h); err != nil {
			t.Fatal(err)
		}
		c := f.Calls()[0].Cmd
		if !c.Become || c.BecomeUser != "etcd" {
			t.Errorf("command ran with become %v user %q", c.Become, c.BecomeUser)
		}
	})
	t.Run("a lost connection is an error, not a verdict", func(t *testing.T) {
		f := conntest.New(t)
		f.FailAfter(0, nil)
		h := &modules.Host{Name: "etcd-1", Conn: f, Log: zerolog.Nop()}
		res, err := (&Module{Command: arg.Argv{"true"}, Expect: compiled(t, "result.rc != 0")}).Run(testCtx(t), h)
		if !conn.IsTransport(err) || res.Data != nil {
			t.Fatalf("Run = %v, %v; want a transport error and no result", res, err)
		}
	})
}

// caFile writes the certificate of a TLS test server as a PEM file in dir.
func caFile(t *testing.T, srv *httptest.Server, dir, name string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// otherCA returns a self-signed CA certificate that signed nothing the test
// servers use (httptest's servers all share one certificate).
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestHTTP(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
			fmt.Fprint(w, `{"health":"true","reason":"","members":3}`)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"health":"false","reason":"RAFT NO LEADER"}`)
		case "/echo":
			fmt.Fprintf(w, "%s %s auth=%s", r.Method, r.Host, r.Header.Get("Authorization"))
		case "/big":
			fmt.Fprint(w, strings.Repeat("x", MaxBody+10))
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	tlsSrv := httptest.NewUnstartedServer(handler)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	tests := []struct {
		name    string
		p       HTTP
		wantErr string
		check   func(t *testing.T, data map[string]any)
	}{
		{"200 with json", HTTP{URL: srv.URL + "/health", Expect: compiled(t, `result.json.health == "true" && result.json.members == 3`)}, "",
			func(t *testing.T, data map[string]any) {
				if data["status"] != 200 || data["headers"].(map[string]any)["X-Etcd-Cluster-Id"] != "cdf818194e3a8c32" {
					t.Errorf("data = %v", data)
				}
			}},
		{"status not allowed", HTTP{URL: srv.URL + "/down"}, `http: status 503 is not 200: GET ` + srv.URL + `/down gave status 503, body "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}"`, nil},
		{"status in the list", HTTP{URL: srv.URL + "/down", Status: Statuses{200, 503}, BodyContains: "NO LEADER"}, "", nil},
		{"body_contains missing", HTTP{URL: srv.URL + "/health", BodyContains: "NO LEADER"}, `the body does not contain "NO LEADER"`, nil},
		{"expect false", HTTP{URL: srv.URL + "/down", Status: Statuses{503}, Expect: compiled(t, `result.json.health == "true"`)},
			"rb.yml:7:13: http.expect `result.json.health == \"true\"` is false: GET " + srv.URL + "/down gave status 503", nil},
		{"expect over a body that is not json", HTTP{URL: srv.URL + "/echo", Expect: compiled(t, `result.json == nil && result.body startsWith "GET"`)}, "", nil},
		{"method, headers and host", HTTP{URL: srv.URL + "/echo", Method: "POST", Headers: map[string]string{"Authorization": "Bearer t0k", "Host": "etcd.example"},
			BodyContains: "POST etcd.example auth=Bearer t0k"}, "", nil},
		{"big body is cut", HTTP{URL: srv.URL + "/big"}, "", func(t *testing.T, data map[string]any) {
			if len(data["body"].(string)) != MaxBody || data["body_truncated"] != true {
				t.Errorf("body of %d bytes, truncated %v", len(data["body"].(string)), data["body_truncated"])
			}
		}},
		{"nothing listens", HTTP{URL: "http://" + closedAddr(t) + "/health"}, "connection refused", nil},
		{"timeout", HTTP{URL: slowServer(t) + "/", Timeout: arg.Duration(100 * time.Millisecond)}, "no answer in time", nil},
		{"tls with ca_file", HTTP{URL: tlsSrv.URL + "/health", CAFile: "ca.pem"}, "", nil},
		{"tls without ca_file is not trusted", HTTP{URL: tlsSrv.URL + "/health"}, "certificate signed by unknown authority", nil},
		{"tls with another CA", HTTP{URL: tlsSrv.URL + "/health", CAFile: "other.pem"}, "certificate signed by unknown authority", nil},
		{"ca_file missing", HTTP{URL: tlsSrv.URL + "/health", CAFile: "missing.pem"}, "http.ca_file: open ", nil},
		{"ca_file not PEM", HTTP{URL: tlsSrv.URL + "/health", CAFile: "junk.pem"}, "holds no PEM certificate", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := localHost(t)
			caFile(t, tlsSrv, h.RunbookDir, "ca.pem")
			writeFile(t, filepath.Join(h.RunbookDir, "other.pem"), otherCA(t))
			writeFile(t, filepath.Join(h.RunbookDir, "junk.pem"), []byte("not a cert"))
			p := tt.p
			m := &Module{HTTP: &p}
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			res, err := m.Run(testCtx(t), h)
			checkErr(t, err, tt.wantErr)
			if res.Changed {
				t.Error("a check reported a change")
			}
			if tt.check != nil {
				tt.check(t, res.Data)
			}
			if res.Data != nil {
				roundTrip(t, res.Data)
			}
		})
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// slowServer answers only when the test ends.
func slowServer(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open, closed := l.Addr().String(), closedAddr(t)
	tests := []struct {
		name     string
		p        TCP
		wantErr  string
		wantOpen bool
	}{
		{"open", TCP{Addr: open}, "", true},
		{"closed", TCP{Addr: closed}, "tcp: " + closed + ": connect: connection refused (from the controller, timeout 5s)", false},
		{"closed wanted", TCP{Addr: closed, Closed: true}, "", false},
		{"open but closed wanted", TCP{Addr: open, Closed: true}, "is open, and closed: true wants nothing listening there", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			m := &Module{TCP: &p}
			res, err := m.Run(testCtx(t), localHost(t))
			checkErr(t, err, tt.wantErr)
			if res.Data["open"] != tt.wantOpen || res.Changed {
				t.Errorf("result = %+v", res)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := (&Module{TCP: &TCP{Addr: open}}).Run(ctx, localHost(t))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestEtcd shows that the etcd probe is dispatched with the host's vars: the
// probe itself is tested against real clusters in internal/etcdctl.
func TestEtcd(t *testing.T) {
	h := localHost(t)
	h.Vars = map[string]any{"etcd_endpoints": []any{"http://127.0.0.29:1"}}
	res, err := (&Module{Etcd: &CheckConfig{}}).Run(testCtx(t), h)
	if err == nil || !strings.Contains(err.Error(), "etcd: 2 problems: endpoint http://127.0.0.29:1 does not answer") {
		t.Fatalf("Run = %v", err)
	}
	eps, _ := res.Data["endpoints"].([]any)
	if len(eps) != 1 || eps[0].(map[string]any)["url"] != "http://127.0.0.29:1" {
		t.Errorf("data = %v, want what the probe saw of the endpoint", res.Data)
	}
	h.Vars = nil
	if _, err := (&Module{Etcd: &CheckConfig{}}).Run(testCtx(t), h); err == nil || !strings.Contains(err.Error(), "var etcd_endpoints") {
		t.Errorf("Run without endpoints = %v", err)
	}
}
