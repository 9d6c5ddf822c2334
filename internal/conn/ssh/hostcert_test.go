package ssh_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// keygen runs ssh-keygen, as an operator's CA would be run.
func keygen(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// certSSHD starts an sshd on 127.0.0.61 whose host key has a certificate
// signed by the CA key file ca with the given ssh-keygen options
// (-n principals, -V validity).
func certSSHD(t *testing.T, ca string, opts ...string) *sshtest.SSHD {
	t.Helper()
	dir := t.TempDir()
	host := sshtest.NewEd25519(t)
	pub := filepath.Join(dir, "host.pub")
	writeFile(t, pub, host.AuthorizedLine(), 0o600)
	keygen(t, append(append([]string{"-q", "-s", ca, "-h", "-I", "runbook-test"}, opts...), pub)...)
	return sshtest.StartSSHD(t, sshtest.SSHDOptions{
		Addrs:    []string{"127.0.0.61"},
		HostKeys: []*sshtest.Key{host},
		Config:   []string{"HostCertificate " + filepath.Join(dir, "host-cert.pub")},
	})
}

func TestHostCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, otherCA := filepath.Join(dir, "ca"), filepath.Join(dir, "other-ca")
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-f", ca)
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-f", otherCA)
	caPub := func(p string) string {
		data, err := os.ReadFile(p + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}

	good := certSSHD(t, ca, "-n", "127.0.0.61,etcd-1.example", "-V", "-5m:+1h")
	wrongName := certSSHD(t, ca, "-n", "etcd-9.example")
	expired := certSSHD(t, ca, "-n", "127.0.0.61", "-V", "20200101:20200102")
	plain := sshtest.StartSSHD(t, sshtest.SSHDOptions{Addrs: []string{"127.0.0.61"}})

	tests := []struct {
		name       string
		s          *sshtest.SSHD
		knownHosts string // %p is the port
		acceptNew  bool
		problem    rssh.HostKeyProblem // 0: the dial works
		says       []string
	}{
		{name: "signed by the CA, for the name dialed", s: good,
			knownHosts: "@cert-authority [127.0.0.61]:%p " + caPub(ca)},
		{name: "a CA for every host on the port", s: good,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca)},
		{name: "a CA line among plain ones", s: good,
			knownHosts: "other.example " + caPub(otherCA) + "\n@cert-authority *.example,[127.0.0.6?]:%p " + caPub(ca)},
		{name: "another principal", s: wrongName,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca), problem: rssh.HostKeyBadCertificate,
			says: []string{"host certificate of 127.0.0.61:", "it is for etcd-9.example, not for \"127.0.0.61\", the name it was dialed by", "ssh-keygen -h -n", "Refusing to connect"}},
		{name: "another principal, but the plain key is known", s: wrongName,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca) + "\n" + strings.TrimSpace(wrongName.KnownHostsLines()[0])},
		{name: "expired", s: expired,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca), problem: rssh.HostKeyBadCertificate,
			says: []string{"it expired at 2020-01-02"}},
		{name: "signed by a CA not trusted", s: good,
			knownHosts: "@cert-authority [*]:%p " + caPub(otherCA), acceptNew: true, problem: rssh.HostKeyBadCertificate,
			says: []string{"which no @cert-authority line of the known_hosts files trusts"}},
		{name: "the CA revoked", s: good,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca) + "\n@revoked [*]:%p " + caPub(ca), problem: rssh.HostKeyRevoked,
			says: []string{"REVOKED", ":2"}},
		{name: "the host key revoked", s: good,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca) + "\n@revoked [*]:%p " + good.HostKeys[0].AuthorizedLine(), problem: rssh.HostKeyRevoked},
		{name: "a host with no certificate is checked by its plain key", s: plain,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca) + "\n" + strings.Join(plain.KnownHostsLines(), "\n")},
		{name: "a host with no certificate and no plain line is unknown", s: plain,
			knownHosts: "@cert-authority [*]:%p " + caPub(ca), problem: rssh.HostKeyUnknown},
		{name: "a CA for other hosts only: the plain key is unknown", s: good,
			knownHosts: "@cert-authority *.example " + caPub(ca), problem: rssh.HostKeyUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kh := writeFile(t, filepath.Join(t.TempDir(), "known_hosts"),
				strings.ReplaceAll(tt.knownHosts, "%p", strconv.Itoa(tt.s.Port))+"\n", 0o600)
			before, _ := os.ReadFile(kh)
			o := options(t, tt.s)
			o.KnownHostsFiles, o.AcceptNewHostKeys = []string{kh}, tt.acceptNew
			c, err := newDialer(t, o).Dial(ctxT(t), target(tt.s, 0))
			if tt.problem == 0 {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				mustRun(t, c, "true")
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			he := errorAs[*rssh.HostKeyError](t, err)
			if !conn.IsTransport(err) || he.Problem != tt.problem {
				t.Fatalf("err = %v, problem %v; want problem %v", err, he.Problem, tt.problem)
			}
			contains(t, err.Error(), tt.says...)
			if after, _ := os.ReadFile(kh); string(after) != string(before) {
				t.Errorf("known_hosts changed to %q", after)
			}
		})
	}
}

// TestCertificateRules checks rules a real sshd would need odd certificates
// for: no principal at all, and a user certificate shown as a host's.
func TestCertificateRules(t *testing.T) {
	t.Parallel()
	ca := sshtest.NewEd25519(t)
	host := sshtest.NewEd25519(t)
	sign := func(c *ssh.Certificate) *ssh.Certificate {
		c.Key, c.ValidBefore = host.Public(), ssh.CertTimeInfinity
		if err := c.SignCert(strings.NewReader(strings.Repeat("x", 64)), ca.Signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	kh := writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), "@cert-authority * "+ca.AuthorizedLine(), 0o600)
	for _, tt := range []struct {
		name string
		cert *ssh.Certificate
		says string
	}{
		{"no principal", sign(&ssh.Certificate{CertType: ssh.HostCert}), "it names no principal"},
		{"a user certificate", sign(&ssh.Certificate{CertType: ssh.UserCert, ValidPrincipals: []string{"127.0.0.61"}}), "not a host certificate"},
		{"not yet valid", sign(&ssh.Certificate{CertType: ssh.HostCert, ValidPrincipals: []string{"127.0.0.61"}, ValidAfter: 1 << 40}), "it is not valid before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := rssh.CheckHostKey(kh, "127.0.0.61:22", tt.cert)
			he := errorAs[*rssh.HostKeyError](t, err)
			if he.Problem != rssh.HostKeyBadCertificate {
				t.Fatalf("err = %v", err)
			}
			contains(t, err.Error(), tt.says)
		})
	}
	good := sign(&ssh.Certificate{CertType: ssh.HostCert, ValidPrincipals: []string{"127.0.0.61"}})
	if err := rssh.CheckHostKey(kh, "127.0.0.61:22", good); err != nil {
		t.Errorf("a good certificate: %v", err)
	}
}
