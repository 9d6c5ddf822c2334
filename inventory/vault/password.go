package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/redact"
)

// ScriptTimeout bounds a password script: it may ask a person (a pinentry),
// but a script that hangs must not hang the command that needs the password.
const ScriptTimeout = 2 * time.Minute

// clientExitUnknownID is what a client script exits with when it has no
// password for the vault id asked, as in Ansible.
const clientExitUnknownID = 2

// SplitID splits a --vault-id argument, "label@source" or "source", as Ansible
// does: the label defaults to DefaultID, the source is a file, a script or "prompt".
func SplitID(arg string) (label, source string) {
	if i := strings.Index(arg, "@"); i >= 0 {
		return arg[:i], arg[i+1:]
	}
	return DefaultID, arg
}

// FromFile reads the password for vault id id from path, as Ansible's
// --vault-password-file and --vault-id id@path do: the file's content with the
// whitespace around it removed; or, when the file is executable, the output of
// running it (a script whose name ends in -client, such as vault-keyring-client.py,
// is run with --vault-id ID and exits 2 when it has no password for that id).
// The script's standard error goes to stderr, so that it can ask a person.
func FromFile(ctx context.Context, id, path string, stdin io.Reader, stderr io.Writer) (Secret, error) {
	source := "--vault-password-file " + path
	if id != DefaultID {
		source = "--vault-id " + id + "@" + path
	}
	s := Secret{ID: id, Source: source}
	st, err := os.Stat(path)
	if err != nil {
		return s, fmt.Errorf("%s: cannot read the vault password file: %w", source, unwrapPath(err))
	}
	if st.IsDir() {
		return s, fmt.Errorf("%s: the vault password file is a directory", source)
	}
	var pw []byte
	if st.Mode().Perm()&0o111 != 0 {
		pw, err = runScript(ctx, id, path, stdin, stderr)
		if err != nil {
			return s, fmt.Errorf("%s: %w", source, err)
		}
		pw = bytes.Trim(pw, "\r\n")
	} else {
		data, err := os.ReadFile(path)
		if err != nil {
			return s, fmt.Errorf("%s: cannot read the vault password file: %w", source, unwrapPath(err))
		}
		pw = bytes.TrimSpace(data)
	}
	if IsEncrypted(pw) {
		return s, fmt.Errorf("%s: the vault password file is itself vault-encrypted; give a file holding the password in clear, readable only by you, or a script that prints it", source)
	}
	if len(pw) == 0 {
		return s, fmt.Errorf("%s: the vault password is empty", source)
	}
	s.Password = pw
	return s, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func runScript(ctx context.Context, id, path string, stdin io.Reader, stderr io.Writer) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ScriptTimeout)
	defer cancel()
	var args []string
	client := strings.HasSuffix(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), "-client")
	if client {
		args = []string{"--vault-id", id}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	cmd := exec.CommandContext(ctx, abs, args...)
	// The script is a command like any other the controller runs: the
	// passphrase of the operator's SSH key is not its business.
	cmd.Env = redact.ChildEnv(os.Environ())
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stdin = stdin
	cmd.Stderr = stderr
	if client {
		// A client script's stderr explains a refusal; keep it for the error.
		cmd.Stderr = &errOut
	}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("the vault password script did not finish within %s", ScriptTimeout)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && client && ee.ExitCode() == clientExitUnknownID:
		return nil, fmt.Errorf("the vault password client script has no password for vault id %q%s", id, stderrTail(errOut.Bytes()))
	case errors.As(err, &ee):
		return nil, fmt.Errorf("the vault password script failed (%v)%s", ee, stderrTail(errOut.Bytes()))
	case err != nil:
		return nil, fmt.Errorf("cannot run the vault password script (%v); if it is not a script, remove its executable bit", unwrapPath(err))
	}
	return out.Bytes(), nil
}

func stderrTail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = "..." + s[len(s)-200:]
	}
	return ": " + s
}
