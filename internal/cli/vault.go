package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/runbookhq/runbook/internal/exitcode"
	"github.com/runbookhq/runbook/inventory/vault"
)

// vaultFlags give the passwords of Ansible Vault data in the inventory and in
// -e @files, as ansible-playbook takes them.
type vaultFlags struct {
	passwordFiles []string
	ids           []string
	ask           bool

	// secrets are the passwords read by resolve, before the command runs.
	secrets []vault.Secret
}

func (f *vaultFlags) registerVault(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.passwordFiles, "vault-password-file", nil,
		"file holding the vault password, or, if executable, a script that prints it (repeatable)")
	cmd.Flags().StringArrayVar(&f.ids, "vault-id", nil,
		"vault password for a vault id, as LABEL@FILE, LABEL@prompt or FILE (repeatable)")
	cmd.Flags().BoolVarP(&f.ask, "ask-vault-pass", "J", false, "ask for the vault password on the terminal")
	cmd.Flags().BoolVar(&f.ask, "ask-vault-password", false, "same as --ask-vault-pass")
	_ = cmd.Flags().MarkHidden("ask-vault-password")
	// The passwords are read (and asked for) once, before the command reads
	// anything, so that a refusal is exit 2 with nothing done.
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if prev != nil {
			if err := prev(cmd, args); err != nil {
				return err
			}
		}
		return f.resolve(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr())
	}
}

// resolve reads every password given, in Ansible's order: --vault-id, then
// --ask-vault-pass, then --vault-password-file.
func (f *vaultFlags) resolve(ctx context.Context, stdin io.Reader, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	f.secrets = nil
	add := func(label, source, flag string) error {
		if label == "" {
			return invalidf("%s: the vault id before @ is empty; write LABEL@FILE", flag)
		}
		if source == "" {
			return invalidf("%s: the password source after @ is empty; write LABEL@FILE or LABEL@prompt", flag)
		}
		var s vault.Secret
		var err error
		if source == "prompt" {
			s, err = promptVault(label, stdin, stderr, flag)
		} else {
			s, err = vault.FromFile(ctx, label, source, stdin, stderr)
		}
		if err != nil {
			return withCode(exitcode.Invalid, err)
		}
		f.secrets = append(f.secrets, s)
		return nil
	}
	for _, id := range f.ids {
		label, source := vault.SplitID(id)
		if err := add(label, source, "--vault-id "+id); err != nil {
			return err
		}
	}
	if f.ask {
		if err := add(vault.DefaultID, "prompt", "--ask-vault-pass"); err != nil {
			return err
		}
	}
	for _, file := range f.passwordFiles {
		if file == "" {
			return invalidf("--vault-password-file needs a file name")
		}
		if err := add(vault.DefaultID, file, "--vault-password-file "+file); err != nil {
			return err
		}
	}
	return nil
}

// promptVault asks for a password on the terminal without echo, as Ansible
// does ("Vault password: ", or "Vault password (LABEL): " for a vault id).
func promptVault(label string, stdin io.Reader, stderr io.Writer, flag string) (vault.Secret, error) {
	s := vault.Secret{ID: label, Source: flag}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return s, fmt.Errorf("%s asks for the vault password on a terminal, and standard input is not one; give the password with --vault-password-file FILE (a file holding it, or a script that prints it)", flag)
	}
	prompt := "Vault password: "
	if label != vault.DefaultID {
		prompt = fmt.Sprintf("Vault password (%s): ", label)
	}
	fmt.Fprint(stderr, prompt)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return s, fmt.Errorf("%s: reading the password: %w", flag, err)
	}
	if len(pw) == 0 {
		return s, errors.New(flag + ": the vault password is empty")
	}
	s.Password = pw
	return s, nil
}
