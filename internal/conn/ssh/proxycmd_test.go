package ssh_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/sshtest"
)

// TestProxyCommand reaches a real sshd through a ProxyCommand that writes
// a marker file (what it was given, and its process ID) and relays with
// bash's /dev/tcp.
func TestProxyCommand(t *testing.T) {
	t.Parallel()
	s := sshtest.StartSSHD(t, sshtest.SSHDOptions{})
	port := strconv.Itoa(s.Port)
	relay := func(marker string) string {
		return `bash -c 'echo "%h %p %r %n $$" >> ` + marker + `; exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3'`
	}

	tests := []struct {
		name   string
		config string // MARKER is the marker file, RELAY the relay command, PORT the port
		target func() conn.Target
		// marker is the first line the marker must hold ("" for no file).
		marker     string
		knownHosts string // "" for the sshd's keys
		wantErr    string
	}{
		{name: "through the command", config: "Host 127.0.0.61\n  ProxyCommand RELAY\n",
			marker: "127.0.0.61 PORT USER 127.0.0.61"},
		{name: "HostName and the name given", config: "Host proxied\n  HostName 127.0.0.62\n  ProxyCommand RELAY\n",
			target: func() conn.Target {
				return conn.Target{Name: "proxied", Addr: "proxied", Port: s.Port, Connection: "ssh", Vars: map[string]any{"ansible_port": s.Port}}
			},
			marker: "127.0.0.62 PORT USER proxied"},
		{name: "the host key is still checked", config: "Host 127.0.0.61\n  ProxyCommand RELAY\n",
			knownHosts: knownhosts.Line([]string{s.Addr(0)}, sshtest.NewEd25519(t).Public()),
			marker:     "127.0.0.61 PORT USER 127.0.0.61", wantErr: "HOST KEY CHANGED"},
		{name: "none", config: "Host 127.0.0.61\n  ProxyCommand none\nHost *\n  ProxyCommand RELAY\n"},
		{name: "ProxyJump written first wins", config: "Host 127.0.0.61\n  ProxyJump 127.0.0.62:PORT\n  ProxyCommand RELAY\n"},
		{name: "ProxyCommand written first wins", config: "Host 127.0.0.61\n  ProxyCommand RELAY\nHost *\n  ProxyJump 127.0.0.62:PORT\n",
			marker: "127.0.0.61 PORT USER 127.0.0.61"},
		{name: "a jump host's own ProxyCommand", config: "Host 127.0.0.61\n  ProxyJump 127.0.0.62:PORT\nHost 127.0.0.62\n  ProxyCommand RELAY\n",
			marker: "127.0.0.62 PORT USER 127.0.0.62"},
		{name: "a command that fails says why", config: "Host 127.0.0.61\n  ProxyCommand sh -c 'echo no route to the bastion >&2; exit 3'\n",
			wantErr: `the ProxyCommand "sh -c 'echo no route to the bastion >&2; exit 3'" exit status 3, saying: no route to the bastion`},
		{name: "an unknown token is refused", config: "Host 127.0.0.61\n  ProxyCommand nc %C\n",
			wantErr: "%C is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			marker := filepath.Join(dir, "marker")
			cfg := strings.NewReplacer("RELAY", relay(marker), "PORT", port).Replace(tt.config)
			o := options(t, s)
			o.ConfigFile = writeFile(t, filepath.Join(dir, "config"), cfg, 0o600)
			o.Attempts = 1
			if tt.knownHosts != "" {
				o.KnownHostsFiles = []string{writeFile(t, filepath.Join(dir, "known_hosts"), tt.knownHosts+"\n", 0o600)}
			}
			tg := target(s, 0)
			if tt.target != nil {
				tg = tt.target()
			}
			c, err := newDialer(t, o).Dial(ctxT(t), tg)
			if err == nil {
				t.Cleanup(func() { c.Close() })
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				mustRun(t, c, "true")
			} else {
				if err == nil {
					t.Fatal("connected")
				}
				contains(t, err.Error(), tt.wantErr)
			}

			data, rerr := os.ReadFile(marker)
			if tt.marker == "" {
				if rerr == nil {
					t.Fatalf("the ProxyCommand ran: %q", data)
				}
				return
			}
			if rerr != nil {
				t.Fatalf("the connection did not go through the ProxyCommand: %v", rerr)
			}
			fields := strings.Fields(string(data))
			want := strings.ReplaceAll(strings.ReplaceAll(tt.marker, "PORT", port), "USER", s.User)
			if len(fields) != 5 || strings.Join(fields[:4], " ") != want {
				t.Fatalf("marker = %q, want %q and a pid", data, want)
			}
			// Closing the connection ends the command and what it started
			// (the background cat of the relay).
			if c != nil {
				c.Close()
			}
			pgid, _ := strconv.Atoi(fields[4])
			waitFor(t, 10*time.Second, "the ProxyCommand's processes to end", func() bool {
				return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
			})
		})
	}
}

// TestProxyCommandHostileName: an inventory name or address never becomes
// shell code in a ProxyCommand.
func TestProxyCommandHostileName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := hermetic(t)
	o.ConfigFile = writeFile(t, filepath.Join(dir, "config"), "Host *\n  ProxyCommand nc %h %p\n", 0o600)
	o.Attempts = 1
	for _, addr := range []string{"a;touch pwned", "$(touch pwned)", "-oProxyCommand=x", "a b", "`id`"} {
		tg := conn.Target{Name: "h", Addr: addr, Port: 22, Connection: "ssh", Vars: map[string]any{"ansible_host": addr}}
		_, err := newDialer(t, o).Dial(ctxT(t), tg)
		if err == nil || !strings.Contains(err.Error(), "holds characters a shell would read") {
			t.Errorf("%q: err = %v", addr, err)
		}
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a host name ran as shell code")
	}
}
