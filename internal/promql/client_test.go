package promql

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiServer is a real HTTP server on 127.0.0.1 that answers the query
// endpoints with body and records what it was asked.
type apiServer struct {
	mu    sync.Mutex
	auth  []string
	forms []string
	body  string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	a.mu.Lock()
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	a.forms = append(a.forms, r.URL.Path+"?"+r.Form.Encode())
	body := a.body
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(body, `"status":"error"`) {
		w.WriteHeader(http.StatusBadRequest)
	}
	fmt.Fprint(w, body)
}

const (
	vectorOne = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1700000000,"0.25"]}]}}`
	vectorTwo = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"b"},"value":[1700000000,"2"]},{"metric":{"job":"a"},"value":[1700000000,"1"]}]}}`
	vectorNil = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	scalar    = `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`
	matrix    = `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1700000000,"1"],[1700000001,"2"]]}]}}`
	badData   = `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}`
)

func TestResults(t *testing.T) {
	a := &apiServer{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name, body string
		number     float64
		numErr     string
		samples    int
	}{
		{"one sample", vectorOne, 0.25, "", 1},
		{"scalar", scalar, 42, "", 1},
		{"two series", vectorTwo, 0, "gave 2 series, want one number", 2},
		{"no series", vectorNil, 0, "no data", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.mu.Lock()
			a.body = tt.body
			a.mu.Unlock()
			r, err := c.Query(context.Background(), `up`, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			n, err := r.Number()
			if tt.numErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.numErr) {
					t.Fatalf("Number() error = %v, want %q", err, tt.numErr)
				}
			} else if err != nil || n != tt.number {
				t.Fatalf("Number() = %v, %v; want %v", n, err, tt.number)
			}
			s, err := r.Samples()
			if err != nil || len(s) != tt.samples {
				t.Fatalf("Samples() = %v, %v; want %d", s, err, tt.samples)
			}
		})
	}
	a.body = vectorTwo
	r, _ := c.Query(context.Background(), `up`, time.Time{})
	s, _ := r.Samples()
	if s[0].Labels["job"] != "a" || s[1].Value != 2 {
		t.Errorf("samples are not sorted by labels: %+v", s)
	}
	if !errors.Is(func() error {
		a.body = vectorNil
		r, _ := c.Query(context.Background(), "up", time.Time{})
		_, err := r.Number()
		return err
	}(), ErrNoData) {
		t.Error("an empty vector is not ErrNoData")
	}
}

func TestQueryRange(t *testing.T) {
	a := &apiServer{body: matrix}
	srv := httptest.NewServer(a)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Unix(1700000001, 0)
	r, err := c.QueryRange(context.Background(), `rate(x[1m])`, Range{Start: end.Add(-time.Second), End: end, Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Matrix()
	if err != nil || len(m) != 1 || len(m[0].Points) != 2 || m[0].Points[1].Value != 2 || m[0].Labels["job"] != "a" {
		t.Fatalf("Matrix() = %+v, %v", m, err)
	}
	if _, err := r.Number(); err == nil {
		t.Error("Number() of a matrix did not fail")
	}
	if !strings.Contains(a.forms[0], "/api/v1/query_range?") || !strings.Contains(a.forms[0], "step=1") {
		t.Errorf("request = %s, want a query_range with step 1", a.forms[0])
	}
	if _, err := c.QueryRange(context.Background(), `x`, Range{Start: end, End: end, Step: time.Second}); err == nil {
		t.Error("an empty range was not refused")
	}
}

func TestAuthAndSecrets(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		header string
		secret string
	}{
		{"bearer", Config{BearerToken: "s3cr3t-token"}, "Bearer s3cr3t-token", "s3cr3t-token"},
		{"basic", Config{Username: "ops", Password: "hunter2pw"}, "Basic b3BzOmh1bnRlcjJwdw==", "hunter2pw"},
		{"url user info", Config{URL: "user:pa55word@"}, "Basic dXNlcjpwYTU1d29yZA==", "pa55word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &apiServer{body: badData}
			srv := httptest.NewServer(a)
			defer srv.Close()
			cfg := tt.cfg
			cfg.URL = strings.Replace(srv.URL, "http://", "http://"+cfg.URL, 1)
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Query(context.Background(), `up`, time.Time{})
			if err == nil {
				t.Fatal("a bad_data answer did not fail")
			}
			if a.auth[0] != tt.header {
				t.Errorf("Authorization = %q, want %q", a.auth[0], tt.header)
			}
			for _, s := range []string{err.Error(), cfg.String(), c.URL()} {
				if strings.Contains(s, tt.secret) {
					t.Errorf("%q shows the secret", s)
				}
			}
			// A server that is gone: the transport error names the URL.
			srv.Close()
			_, err = c.Query(context.Background(), `up`, time.Time{})
			if err == nil || strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error of a stopped server = %v", err)
			}
		})
	}
	if _, err := New(Config{URL: "http://127.0.0.1:1", BearerToken: "a", Username: "b"}); err == nil {
		t.Error("a token with a user name was accepted")
	}
	if _, err := New(Config{URL: "ftp://127.0.0.1"}); err == nil {
		t.Error("an ftp URL was accepted")
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(&apiServer{body: scalar})
	defer srv.Close()
	// Without the CA, the server's certificate is refused: never skipped.
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("query with an unknown CA: %v, want a certificate error", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = New(Config{URL: srv.URL, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Query(context.Background(), "up", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Number(); n != 42 {
		t.Errorf("Number() = %v, want 42", n)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query of a server that does not answer: %v, want a deadline error", err)
	}
}

// TestNumberOfNoSeries: no series is 0 when every name the query reads
// exists, and an error naming the missing ones otherwise.
func TestNumberOfNoSeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.Form.Get("query"), "count by (__name__)") {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"http_requests_total"},"value":[1700000000,"4"]}]}}`)
			return
		}
		fmt.Fprint(w, vectorNil)
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Number(context.Background(), `sum(rate(http_requests_total{code="500"}[1m]))`, time.Time{})
	if err != nil || n != 0 {
		t.Errorf("no 500s: %v, %v; want 0", n, err)
	}
	_, err = c.Number(context.Background(), `sum(rate(http_request_total{code="500"}[1m])) / sum(rate(http_requests_total[1m]))`, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "no series named http_request_total: a misspelt name") {
		t.Errorf("a misspelt name: %v", err)
	}
}

func TestMetricNames(t *testing.T) {
	got, err := MetricNames(`sum(rate(a{x="1"}[1m])) / sum(rate({__name__="b"}[1m])) + a`)
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Errorf("MetricNames = %v, %v; want a, b", got, err)
	}
}
