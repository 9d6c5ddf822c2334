package ssh_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh/agent"

	"github.com/runbookhq/runbook/internal/conn"
	rssh "github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// startAgent serves an in-process ssh-agent holding keys on a socket in a
// temporary folder, until the test ends.
func startAgent(t *testing.T, keys ...*sshtest.Key) string {
	t.Helper()
	ring := agent.NewKeyring()
	for _, k := range keys {
		if err := ring.Add(agent.AddedKey{PrivateKey: k.Private, Comment: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// A short path: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); os.RemoveAll(dir) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(ring, c) }()
		}
	}()
	return sock
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	kh := s.WriteKnownHosts(t, t.TempDir())
	base := func(t *testing.T) rssh.Options {
		o := hermetic(t)
		o.KnownHostsFiles = []string{kh}
		return o
	}

	t.Run("ssh-agent", func(t *testing.T) {
		t.Parallel()
		k := sshtest.NewEd25519(t)
		s.Authorize(t, k.Public())
		o := base(t)
		o.DisableAgent, o.AgentSocket = false, startAgent(t, sshtest.NewEd25519(t), k)
		c := dial(t, newDialer(t, o), target(s, 0))
		mustRun(t, c, "true")
	})

	t.Run("the default key files of the home folder", func(t *testing.T) {
		t.Parallel()
		o := base(t)
		if err := os.MkdirAll(filepath.Join(o.Home, ".ssh"), 0o700); err != nil {
			t.Fatal(err)
		}
		s.ClientKey.Write(t, filepath.Join(o.Home, ".ssh"), "id_ed25519")
		mustRun(t, dial(t, newDialer(t, o), target(s, 1)), "true")
	})

	t.Run("the inventory's key file", func(t *testing.T) {
		t.Parallel()
		tg := target(s, 2)
		tg.KeyFile = s.ClientKeyFile
		mustRun(t, dial(t, newDialer(t, base(t)), tg), "true")
	})

	t.Run("refused keys: an AuthError naming them, not retried", func(t *testing.T) {
		t.Parallel()
		stranger := sshtest.NewRSA(t)
		o := base(t)
		o.IdentityFiles = []string{stranger.Write(t, t.TempDir(), "id_stranger")}
		_, err := newDialer(t, o).Dial(ctxT(t), target(s, 0))
		ae := errorAs[*rssh.AuthError](t, err)
		if !conn.IsTransport(err) || len(ae.Tried) != 1 || ae.User != currentUser(t) {
			t.Fatalf("err = %v (%+v)", err, ae)
		}
		contains(t, err.Error(), o.IdentityFiles[0], "SHA256:", "refused to log in")
		var ue *rssh.UnreachableError
		if errors.As(err, &ue) {
			t.Error("a refused login is reported as unreachable")
		}
	})

	t.Run("IdentitiesOnly keeps the agent's other keys back", func(t *testing.T) {
		t.Parallel()
		stranger := sshtest.NewEd25519(t)
		for _, only := range []bool{false, true} {
			o := base(t)
			o.DisableAgent, o.AgentSocket = false, startAgent(t, sshtest.NewEd25519(t))
			o.IdentityFiles = []string{stranger.Write(t, t.TempDir(), "id_stranger")}
			if only {
				o.ConfigFile = writeFile(t, filepath.Join(t.TempDir(), "config"), "Host *\n  IdentitiesOnly yes\n", 0o600)
			}
			_, err := newDialer(t, o).Dial(ctxT(t), target(s, 0))
			ae := errorAs[*rssh.AuthError](t, err)
			if want := map[bool]int{false: 2, true: 1}[only]; len(ae.Tried) != want {
				t.Errorf("IdentitiesOnly %t: offered %v, want %d keys", only, ae.Tried, want)
			}
		}
	})

	t.Run("no key at all", func(t *testing.T) {
		t.Parallel()
		_, err := newDialer(t, base(t)).Dial(ctxT(t), target(s, 0))
		errorAs[*rssh.AuthError](t, err)
		contains(t, err.Error(), "no key was offered", "--private-key")
	})

	t.Run("a named key file that is missing", func(t *testing.T) {
		t.Parallel()
		tg := target(s, 0)
		tg.KeyFile = filepath.Join(t.TempDir(), "id_missing")
		_, err := newDialer(t, base(t)).Dial(ctxT(t), tg)
		errorAs[*rssh.AuthError](t, err)
		contains(t, err.Error(), tg.KeyFile, "no such file")
	})
}

// Not parallel: it sets RUNBOOK_SSH_PASSPHRASE.
func TestEncryptedKey(t *testing.T) {
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	kh := s.WriteKnownHosts(t, t.TempDir())
	k := sshtest.NewEd25519(t)
	s.Authorize(t, k.Public())
	enc := k.WriteEncrypted(t, t.TempDir(), "id_enc", "correct horse")
	unauthorized := sshtest.NewEd25519(t).WriteEncrypted(t, t.TempDir(), "id_other", "correct horse")

	var asked atomic.Int32
	opts := func(t *testing.T, keys ...string) rssh.Options {
		o := hermetic(t)
		o.KnownHostsFiles, o.IdentityFiles = []string{kh}, keys
		o.Passphrase = func(file string) ([]byte, error) {
			asked.Add(1)
			if file != enc {
				return nil, fmt.Errorf("asked for %s", file)
			}
			return []byte("correct horse"), nil
		}
		return o
	}
	unset := func(t *testing.T) {
		t.Setenv(rssh.PassphraseEnv, "")
		os.Unsetenv(rssh.PassphraseEnv)
	}

	t.Run("passphrase from the environment", func(t *testing.T) {
		t.Setenv(rssh.PassphraseEnv, "correct horse")
		asked.Store(0)
		mustRun(t, dial(t, newDialer(t, opts(t, enc)), target(s, 0)), "true")
		if asked.Load() != 0 {
			t.Error("asked although the environment had it")
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		t.Setenv(rssh.PassphraseEnv, "wrong")
		_, err := newDialer(t, opts(t, enc)).Dial(ctxT(t), target(s, 0))
		errorAs[*rssh.AuthError](t, err)
		contains(t, err.Error(), "wrong passphrase", enc)
		if strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "correct horse") {
			t.Error("the error shows a passphrase")
		}
	})

	t.Run("asked once for all hosts, and only for a key a host accepts", func(t *testing.T) {
		unset(t)
		asked.Store(0)
		d := newDialer(t, opts(t, unauthorized, enc))
		for i := range 3 {
			mustRun(t, dial(t, d, target(s, i)), "true")
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("asked %d times, want once", n)
		}
	})

	t.Run("no passphrase anywhere", func(t *testing.T) {
		unset(t)
		o := opts(t, enc)
		o.Passphrase = nil
		_, err := newDialer(t, o).Dial(ctxT(t), target(s, 0))
		errorAs[*rssh.AuthError](t, err)
		contains(t, err.Error(), "encrypted", rssh.PassphraseEnv)
	})

	t.Run("the agent's copy is used without a passphrase", func(t *testing.T) {
		unset(t)
		asked.Store(0)
		o := opts(t, enc)
		o.DisableAgent, o.AgentSocket = false, startAgent(t, k)
		mustRun(t, dial(t, newDialer(t, o), target(s, 0)), "true")
		if asked.Load() != 0 {
			t.Error("asked for a passphrase although the agent holds the key")
		}
	})
}

// The ssh config decides what the inventory leaves open; the inventory wins.
func TestSSHConfig(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	dir := t.TempDir()
	kh := s.WriteKnownHosts(t, dir)
	cfg := writeFile(t, filepath.Join(dir, "config"), fmt.Sprintf(`
Host web
  HostName 127.0.0.62
Host jumped
  HostName 127.0.0.63
  ProxyJump %s@127.0.0.61:%d
Host *
  User %s
  Port %d
  IdentityFile %s
  UserKnownHostsFile %s
  ConnectTimeout 7
`, currentUser(t), s.Port, currentUser(t), s.Port, s.ClientKeyFile, kh), 0o600)
	o := hermetic(t)
	o.ConfigFile = cfg
	d := newDialer(t, o)

	server := func(t *testing.T, c conn.Conn) string {
		t.Helper()
		f := strings.Fields(mustRun(t, c, "sh", "-c", "echo $SSH_CONNECTION"))
		if len(f) != 4 {
			t.Fatalf("SSH_CONNECTION = %q", f)
		}
		return f[2]
	}
	logins := func() int { return len(regexp.MustCompile(`Accepted publickey for`).FindAllString(s.Log(), -1)) }

	t.Run("HostName, User, Port, IdentityFile, UserKnownHostsFile", func(t *testing.T) {
		c := dial(t, d, conn.Target{Name: "web", Addr: "web", Port: 22, Connection: "ssh"})
		if got := server(t, c); got != "127.0.0.62" {
			t.Errorf("reached %s, want the HostName 127.0.0.62", got)
		}
		if c.String() != fmt.Sprintf("ssh://%s@127.0.0.62:%d", currentUser(t), s.Port) {
			t.Errorf("String() = %s", c)
		}
	})

	t.Run("ansible_host and ansible_port win over the config", func(t *testing.T) {
		tg := conn.Target{Name: "web", Addr: "127.0.0.63", Port: s.Port, Connection: "ssh",
			Vars: map[string]any{"ansible_host": "127.0.0.63", "ansible_port": s.Port}}
		if got := server(t, dial(t, d, tg)); got != "127.0.0.63" {
			t.Errorf("reached %s, want ansible_host 127.0.0.63", got)
		}
		tg.Port, tg.Vars["ansible_port"] = 1, 1
		_, err := d.Dial(ctxT(t), tg)
		ue := errorAs[*rssh.UnreachableError](t, err)
		if ue.Addr != "127.0.0.63:1" || ue.Attempts != rssh.DefaultAttempts {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("ProxyJump from the config", func(t *testing.T) {
		before := logins()
		c := dial(t, d, conn.Target{Name: "jumped", Addr: "jumped", Connection: "ssh"})
		if got := server(t, c); got != "127.0.0.63" {
			t.Errorf("reached %s, want 127.0.0.63", got)
		}
		if n := logins() - before; n != 2 {
			t.Errorf("%d logins, want 2: the jump host and the target", n)
		}
	})

	t.Run("ProxyJump from the inventory", func(t *testing.T) {
		before := logins()
		tg := target(s, 1)
		tg.Vars[rssh.JumpVar] = fmt.Sprintf("127.0.0.61:%d", s.Port)
		if got := server(t, dial(t, d, tg)); got != "127.0.0.62" {
			t.Errorf("reached %s, want 127.0.0.62", got)
		}
		if n := logins() - before; n != 2 {
			t.Errorf("%d logins, want 2: the jump host and the target", n)
		}
		// none turns the config's ProxyJump off.
		before = logins()
		noJump := map[string]any{rssh.JumpVar: "none"}
		if got := server(t, dial(t, d, conn.Target{Name: "jumped", Addr: "jumped", Connection: "ssh", Vars: noJump})); got != "127.0.0.63" {
			t.Errorf("reached %s", got)
		}
		if n := logins() - before; n != 1 {
			t.Errorf("%d logins, want 1", n)
		}
	})

	t.Run("a jump host that is down", func(t *testing.T) {
		tg := target(s, 1)
		tg.Vars[rssh.JumpVar] = "127.0.0.61:1"
		_, err := d.Dial(ctxT(t), tg)
		errorAs[*rssh.UnreachableError](t, err)
		contains(t, err.Error(), "jump host 127.0.0.61:1")
	})

	t.Run("a target the jump host cannot reach", func(t *testing.T) {
		tg := conn.Target{Name: "h", Addr: "127.0.0.62", Port: 1, Connection: "ssh",
			Vars: map[string]any{"ansible_host": "127.0.0.62", "ansible_port": 1, rssh.JumpVar: fmt.Sprintf("127.0.0.61:%d", s.Port)}}
		_, err := d.Dial(ctxT(t), tg)
		ue := errorAs[*rssh.UnreachableError](t, err)
		if ue.Via != fmt.Sprintf("127.0.0.61:%d", s.Port) {
			t.Errorf("err = %v", err)
		}
	})
}
