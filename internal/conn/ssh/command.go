package ssh

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/conn"
)

// shellPath and envPath are absolute for the reasons the local transport
// gives: a PATH from the runbook's env must not choose which program reads the
// script, and sudo resets the environment, so variables go through env(1).
const (
	shellPath = "/bin/sh"
	envPath   = "/usr/bin/env"
)

// commandLine renders c as the one line an SSH exec request carries. The
// server hands it to the login user's shell, which must be a POSIX shell (sh,
// dash, bash, ksh, zsh: what Ansible needs too; csh and fish read quotes and
// redirections otherwise). Every word is quoted with
// conn.Quote and nothing from Argv, Env or Dir can become shell syntax. The
// program word is always quoted, even when it needs no quoting, so that a
// value such as "if" or "A=B" is run as a program, never read as a reserved
// word or an assignment.
//
// The shape is
//
//	printf 'runbook-pgid=%s\n' "$$" >&2 && [cd -- DIR &&] exec [sudo -n [-u USER] --] [/usr/bin/env K=V...] PROGRAM ARGS
//
// with PROGRAM ARGS being /bin/sh -c SCRIPT for a Shell command. cd runs as the
// login user, then sudo keeps the folder, as the local transport does. The
// first line on stderr tells Run the process group of the command (sshd
// makes the login shell a session leader, and exec keeps its pid), which Run
// strips from the output and uses to kill the command when it is cancelled:
// sshd refuses signal requests in some setups (root logins), see Run.
func commandLine(c conn.Cmd) (string, error) {
	var argv []string
	switch {
	case c.Shell != "" && len(c.Argv) > 0:
		return "", fmt.Errorf("ssh: command sets both Argv %q and Shell %q; set one", c.Argv, c.Shell)
	case c.Shell != "":
		argv = []string{shellPath, "-c", c.Shell}
	case len(c.Argv) == 0 || c.Argv[0] == "":
		return "", errors.New("ssh: empty command: Argv or Shell must be set")
	default:
		argv = c.Argv
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("ssh: %s: a word contains a NUL byte, which no program can receive", c)
		}
	}
	if strings.ContainsRune(c.Dir, 0) || strings.ContainsRune(c.BecomeUser, 0) {
		return "", fmt.Errorf("ssh: %s: the folder or become user contains a NUL byte", c)
	}

	keys := make([]string, 0, len(c.Env))
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return "", fmt.Errorf("ssh: %s: invalid environment variable %q", c, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var b strings.Builder
	b.WriteString(pgidPrefix)
	if c.Dir != "" {
		b.WriteString("cd -- ")
		b.WriteString(conn.Quote(c.Dir))
		b.WriteString(" && ")
	}
	b.WriteString("exec ")
	if c.Become {
		// -n: never prompt; a password prompt would hang an unattended run.
		b.WriteString("sudo -n ")
		if c.BecomeUser != "" {
			b.WriteString("-u ")
			b.WriteString(conn.Quote(c.BecomeUser))
			b.WriteByte(' ')
		}
		b.WriteString("-- ")
	}
	if len(keys) > 0 {
		// env would read a program named A=B as one more assignment.
		if strings.Contains(argv[0], "=") {
			return "", fmt.Errorf("ssh: %s: a program name containing '=' cannot be run with env", c)
		}
		b.WriteString(envPath)
		for _, k := range keys {
			b.WriteByte(' ')
			b.WriteString(conn.Quote(k + "=" + c.Env[k]))
		}
		b.WriteByte(' ')
	}
	b.WriteString(quoteAlways(argv[0]))
	for _, a := range argv[1:] {
		b.WriteByte(' ')
		b.WriteString(conn.Quote(a))
	}
	return b.String(), nil
}

// pgidPrefix makes the login shell print its pid, which is the process group
// and session of everything the command starts, as the first line on stderr,
// with its start time and the host's boot id (see conn.Proc), read with the
// shell's own read and no other program. A host without /proc prints them
// empty.
const pgidPrefix = `{ read -r rb_s </proc/$$/stat; read -r rb_b </proc/sys/kernel/random/boot_id; } 2>/dev/null; ` +
	`printf 'runbook-pgid=%s %s %s\n' "$$" "$rb_s" "$rb_b" >&2 && `

// quoteAlways is conn.Quote, but never leaves the word bare.
func quoteAlways(s string) string {
	q := conn.Quote(s)
	if strings.HasPrefix(q, "'") {
		return q
	}
	return "'" + s + "'"
}
