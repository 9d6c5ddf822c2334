package assertmetric

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a throw-away certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key signed by ca, as PEM: for 127.0.0.1
// as a server, or as a client.
func (ca *testCA) issue(t *testing.T, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "etcd-1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.Subject.CommonName = "runbook"
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// tlsEndpoint serves a healthy page over TLS with a certificate of ca; with
// clientCA it wants a client certificate signed by that CA, as etcd does
// with --client-cert-auth.
func tlsEndpoint(t *testing.T, ca *testCA, clientCA *testCA) string {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, false)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", textFormat)
		fmt.Fprint(w, healthy.page())
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = x509.NewCertPool()
		srv.TLS.ClientCAs.AddCert(clientCA.cert)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestTLS(t *testing.T) {
	ca, other := newCA(t, "etcd test CA"), newCA(t, "some other CA")
	plain := tlsEndpoint(t, ca, nil)
	mutual := tlsEndpoint(t, ca, ca)
	clientCert, clientKey := ca.issue(t, true)
	strangerCert, strangerKey := other.issue(t, true)
	files := map[string][]byte{
		"pki/ca.pem": ca.pem, "pki/other-ca.pem": other.pem, "pki/junk.pem": []byte("not a certificate"),
		"pki/client.pem": clientCert, "pki/client-key.pem": clientKey,
		"pki/stranger.pem": strangerCert, "pki/stranger-key.pem": strangerKey,
	}
	tests := []struct {
		name    string
		m       Module
		wantErr []string
	}{
		{"ca_file", Module{URL: plain, CAFile: "pki/ca.pem"}, nil},
		{"no ca_file: the system's CAs do not know the test CA", Module{URL: plain},
			[]string{"at " + plain + ": tls: failed to verify certificate: x509: certificate signed by unknown authority (scraped from the controller)"}},
		{"another CA", Module{URL: plain, CAFile: "pki/other-ca.pem"}, []string{"certificate signed by unknown authority"}},
		{"client certificate", Module{URL: mutual, CAFile: "pki/ca.pem", CertFile: "pki/client.pem", KeyFile: "pki/client-key.pem"}, nil},
		{"no client certificate", Module{URL: mutual, CAFile: "pki/ca.pem"}, []string{"at " + mutual + ": tls: certificate required; the endpoint wants a client certificate: give cert_file and key_file"}},
		{"client certificate of another CA", Module{URL: mutual, CAFile: "pki/ca.pem", CertFile: "pki/stranger.pem", KeyFile: "pki/stranger-key.pem"}, []string{"at " + mutual + ": tls: certificate required; the endpoint does not take cert_file: it is not signed by a CA the endpoint trusts"}},
		{"ca_file missing", Module{URL: plain, CAFile: "pki/missing.pem"}, []string{"ca_file: open ", "no such file or directory"}},
		{"ca_file not PEM", Module{URL: plain, CAFile: "pki/junk.pem"}, []string{"ca_file: ", "junk.pem holds no PEM certificate"}},
		{"key that is not the certificate's", Module{URL: mutual, CAFile: "pki/ca.pem", CertFile: "pki/client.pem", KeyFile: "pki/stranger-key.pem"},
			[]string{"cert_file, key_file: tls: private key does not match public key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHost(t)
			for name, b := range files {
				path := filepath.Join(h.RunbookDir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m := tt.m
			m.Expect = compiled(t, `metric("etcd_server_has_leader") == 1`)
			if err := m.Validate(); err != nil {
				t.Fatalf("test case does not validate: %v", err)
			}
			_, err := m.Run(testCtx(t), h)
			checkErr(t, err, tt.wantErr, "")
		})
	}
}
