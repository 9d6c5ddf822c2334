package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/runbookhq/runbook/internal/conn"
	"github.com/runbookhq/runbook/internal/conn/local"
	"github.com/runbookhq/runbook/internal/conn/ssh"
	"github.com/runbookhq/runbook/internal/exitcode"
)

// sshFlags are how exec and resume reach hosts over SSH. They do not shape
// the plan, so resume takes them again rather than from the journal.
type sshFlags struct {
	acceptNewHostKeys bool
	knownHosts        string
	sshConfig         string
	privateKeys       []string
	connectTimeout    time.Duration
}

func (f *sshFlags) registerSSH(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.acceptNewHostKeys, "accept-new-host-keys", false, "record the host key of a host seen for the first time, as ssh's StrictHostKeyChecking=accept-new; a changed key is still refused")
	fl.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file to check host keys against and record new ones in (default: UserKnownHostsFile from the ssh config, else ~/.ssh/known_hosts)")
	fl.StringVar(&f.sshConfig, "ssh-config", "", "ssh config file for HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile, ConnectTimeout; inventory variables win, and runbook_jump_host sets ProxyJump per host (default ~/.ssh/config when it exists)")
	fl.StringArrayVar(&f.privateKeys, "private-key", nil, "private key file to log in with, after the inventory's ansible_ssh_private_key_file (repeatable); ssh-agent's keys are offered too")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", ssh.DefaultConnectTimeout, "time limit for each attempt to connect and log in to a host; when not given, the ssh config's ConnectTimeout wins over this default")
}

// options turns the flags into the SSH dialer's options. ask is nil when
// there is no terminal to ask a key's passphrase on.
func (f *sshFlags) options(cmd *cobra.Command, log zerolog.Logger, ask func(string) ([]byte, error)) ssh.Options {
	o := ssh.Options{
		AcceptNewHostKeys: f.acceptNewHostKeys,
		ConfigFile:        f.sshConfig,
		IdentityFiles:     f.privateKeys,
		Passphrase:        ask,
		Log:               log,
	}
	if f.knownHosts != "" {
		o.KnownHostsFiles = []string{f.knownHosts}
	}
	// Unset, the ssh config's ConnectTimeout may decide.
	if cmd != nil && cmd.Flags().Changed("connect-timeout") {
		o.ConnectTimeout = f.connectTimeout
	}
	return o
}

// check reports flag values that cannot work, before anything is touched.
func (f *sshFlags) check(cmd *cobra.Command) error {
	if cmd.Flags().Changed("connect-timeout") && f.connectTimeout <= 0 {
		return invalidf("--connect-timeout must be positive, got %s", f.connectTimeout)
	}
	for _, k := range f.privateKeys {
		if _, err := os.Stat(k); err != nil {
			return withCode(exitcode.Invalid, fmt.Errorf("--private-key: %w", err))
		}
	}
	if _, err := ssh.NewDialer(f.options(cmd, zerolog.Nop(), nil)); err != nil {
		return withCode(exitcode.Invalid, err)
	}
	return nil
}

// hostDialer reaches each host the way its ansible_connection says.
type hostDialer struct {
	local conn.Dialer
	ssh   conn.Dialer
}

func (d hostDialer) Dial(ctx context.Context, t conn.Target) (conn.Conn, error) {
	if t.Connection == "local" {
		return d.local.Dial(ctx, t)
	}
	return d.ssh.Dial(ctx, t)
}

// dialer is the run's dialer: local hosts here, the others over SSH.
func (a *app) dialer(cmd *cobra.Command, f *sshFlags, log zerolog.Logger) (conn.Dialer, error) {
	var ask func(string) ([]byte, error)
	if in, ok := a.stdin.(*os.File); ok && isTerminal(in) {
		var mu sync.Mutex
		ask = func(file string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(a.stderr, "\nEnter passphrase for key %s: ", file)
			p, err := term.ReadPassword(int(in.Fd()))
			fmt.Fprintln(a.stderr)
			if err != nil {
				return nil, fmt.Errorf("reading the passphrase: %w", err)
			}
			if len(p) == 0 {
				return nil, errors.New("no passphrase given")
			}
			return p, nil
		}
	}
	d, err := ssh.NewDialer(f.options(cmd, log, ask))
	if err != nil {
		return nil, err
	}
	return hostDialer{local: local.Dialer{}, ssh: d}, nil
}
