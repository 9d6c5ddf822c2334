package sshtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SkipEnv set to 1 skips the tests that need a real sshd. Nothing else
// skips them: a machine without sshd fails them, with the reason.
const SkipEnv = "RUNBOOK_SKIP_SSHD"

// SSHDPath is where Debian's openssh-server puts sshd (scripts/deps.sh).
const SSHDPath = "/usr/sbin/sshd"

// DefaultAddrs are the loopback addresses a real sshd listens on: three
// "hosts" on one port.
var DefaultAddrs = []string{"127.0.0.61", "127.0.0.62", "127.0.0.63"}

// maxLifetime bounds an sshd whose test has no deadline.
const maxLifetime = 10 * time.Minute

// SSHD is a running OpenSSH server, owned by one test.
type SSHD struct {
	Dir   string   // its folder: config, keys, log
	Addrs []string // addresses it listens on
	Port  int
	User  string // the user it runs as, the only one it lets in
	// HostKeys are its host keys: ed25519 then RSA, unless the test chose.
	HostKeys []*Key
	// ClientKey is authorized; its file is ClientKeyFile.
	ClientKey     *Key
	ClientKeyFile string

	authorized string
	cmd        *exec.Cmd
	log        *lockedBuffer
	exited     chan struct{}
}

// SSHDOptions change what StartSSHD starts.
type SSHDOptions struct {
	Addrs    []string // default DefaultAddrs
	HostKeys []*Key   // default the shared ed25519 and RSA keys
	// Extra lines for sshd_config.
	Config []string
	// Lifetime bounds the sshd when the test has no deadline (a
	// benchmark); default 10 minutes.
	Lifetime time.Duration
}

// StartSSHD starts /usr/sbin/sshd -D -e with a generated config as the
// current user, waits until it answers on every address, and stops it when
// the test ends (or when its deadline comes, whichever is first).
func StartSSHD(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: not starting sshd", SkipEnv)
	}
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Fatalf("sshtest: %v: install openssh-server (scripts/deps.sh does), or set %s=1 to skip", err, SkipEnv)
	}
	if len(o.Addrs) == 0 {
		o.Addrs = DefaultAddrs
	}
	if len(o.HostKeys) == 0 {
		ed, rsaKey := hostKeys(t)
		o.HostKeys = []*Key{ed, rsaKey}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Compiled into sshd: as root it refuses to start without its
		// privilege separation folder, which only its service creates.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshtest: sshd needs /run/sshd when run as root: %v", err)
		}
	}

	s := &SSHD{Dir: t.TempDir(), Addrs: o.Addrs, User: u.Username, HostKeys: o.HostKeys, ClientKey: ClientKey(t)}
	s.ClientKeyFile = s.ClientKey.Write(t, s.Dir, "id_client")
	s.authorized = filepath.Join(s.Dir, "authorized_keys")
	if err := os.WriteFile(s.authorized, []byte(s.ClientKey.AuthorizedLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	var hostKeyLines []string
	for i, k := range s.HostKeys {
		p := k.Write(t, s.Dir, fmt.Sprintf("ssh_host_key_%d", i))
		hostKeyLines = append(hostKeyLines, "HostKey "+p)
	}

	// A port can be taken between our probe and sshd's bind: try again.
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort(s.Addrs)
		if err != nil {
			t.Fatalf("sshtest: no free port on %v: %v", s.Addrs, err)
		}
		s.Port = port
		if lastErr = s.start(t, hostKeyLines, o.Config, o.Lifetime); lastErr == nil {
			return s
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("sshtest: sshd did not start: %v", lastErr)
	return nil
}

func (s *SSHD) start(t testing.TB, hostKeyLines, extra []string, life time.Duration) error {
	t.Helper()
	lines := []string{
		"Port " + strconv.Itoa(s.Port),
	}
	for _, a := range s.Addrs {
		lines = append(lines, "ListenAddress "+a)
	}
	lines = append(lines, hostKeyLines...)
	lines = append(lines,
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile "+s.authorized,
		// The temporary folders are not root's 0755 chain StrictModes wants.
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"AllowTcpForwarding yes",
		"Subsystem sftp internal-sftp",
		"MaxStartups 200:30:400",
		"MaxSessions 50",
		"PrintMotd no",
		"LogLevel VERBOSE",
		// Debian's bash reads ~/.bashrc when sshd starts it, even for a
		// command; on these machines that starts pyenv, 1.5 s per command.
		// A SHLVL of 1 makes bash a nested shell, which skips it.
		"SetEnv SHLVL=1",
	)
	lines = append(lines, extra...)
	cfg := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}

	s.log = &lockedBuffer{}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Its own process group, so Cleanup can end the listener and the
	// session processes it forked; and killed if this test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()

	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	// The watchdog: sshd never outlives the test's deadline, even if the
	// test hangs and Cleanup never runs.
	if life <= 0 {
		life = maxLifetime
	}
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			life = time.Until(d)
		}
	}
	watchdog := time.AfterFunc(life, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	if err := s.waitReady(10 * time.Second); err != nil {
		watchdog.Stop()
		stop()
		return fmt.Errorf("%v\nsshd log:\n%s", err, s.log.String())
	}
	t.Cleanup(func() {
		watchdog.Stop()
		stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	return nil
}

// waitReady waits until every address answers with an SSH banner.
func (s *SSHD) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, a := range s.Addrs {
		addr := net.JoinHostPort(a, strconv.Itoa(s.Port))
		for {
			select {
			case <-s.exited:
				return fmt.Errorf("sshd exited at start")
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("sshd did not answer on %s within %s", addr, limit)
			}
			if banner(addr) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// freePort returns a port free on every address.
func freePort(addrs []string) (int, error) {
	for try := 0; try < 20; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, a := range addrs[1:] {
			m, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, m)
		}
		l.Close()
		for _, m := range held {
			m.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("every port tried was taken on one of the addresses")
}

// Addr returns "address:port" of the i-th address.
func (s *SSHD) Addr(i int) string { return net.JoinHostPort(s.Addrs[i], strconv.Itoa(s.Port)) }

// Pid is the listening sshd's process id; the processes it forks for each
// connection are its children.
func (s *SSHD) Pid() int { return s.cmd.Process.Pid }

// Log returns what sshd has logged so far.
func (s *SSHD) Log() string { return s.log.String() }

// Authorize lets key log in too.
func (s *SSHD) Authorize(t testing.TB, key ssh.PublicKey) {
	t.Helper()
	f, err := os.OpenFile(s.authorized, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(key)); err != nil {
		t.Fatal(err)
	}
}

// KnownHostsLines are known_hosts lines for every address with the host
// keys of the given types (every key when none is given).
func (s *SSHD) KnownHostsLines(types ...string) []string {
	var lines []string
	for i := range s.Addrs {
		for _, k := range s.HostKeys {
			if len(types) > 0 && !contains(types, k.Public().Type()) {
				continue
			}
			lines = append(lines, knownhosts.Line([]string{s.Addr(i)}, k.Public()))
		}
	}
	return lines
}

// WriteKnownHosts writes a known_hosts file for every address (keys of the
// given types, or all) into dir and returns its path.
func (s *SSHD) WriteKnownHosts(t testing.TB, dir string, types ...string) string {
	t.Helper()
	p := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(s.KnownHostsLines(types...), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lockedBuffer is a bytes.Buffer safe for sshd's writes and a test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
