package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/exitcode"
)

// TestRedactArgs: the recorded command line hides the value of -e however the
// flags are written, as pflag reads them, and nothing else.
func TestRedactArgs(t *testing.T) {
	cmd := newExecCmd(&app{})
	fs := cmd.Flags()
	tests := []struct {
		name string
		args string // split on spaces; "_" stands for a space inside a word
		want string
	}{
		{"separate", "runbook exec rb.yml -e k=v", "runbook exec rb.yml -e <hidden>"},
		{"attached", "runbook exec rb.yml -ek=v", "runbook exec rb.yml -e<hidden>"},
		{"with =", "runbook exec rb.yml -e=k=v", "runbook exec rb.yml -e=<hidden>"},
		{"long", "runbook exec rb.yml --extra-vars k=v", "runbook exec rb.yml --extra-vars <hidden>"},
		{"long with =", "runbook exec rb.yml --extra-vars=k=v", "runbook exec rb.yml --extra-vars=<hidden>"},
		{"after a bool shorthand", "runbook exec rb.yml -ye k=v", "runbook exec rb.yml -ye <hidden>"},
		{"after two bool shorthands", "runbook exec rb.yml -yCe k=v", "runbook exec rb.yml -yCe <hidden>"},
		{"attached after a bool", "runbook exec rb.yml -yek=v", "runbook exec rb.yml -ye<hidden>"},
		{"a value that looks like a flag", "runbook exec rb.yml -e --yes", "runbook exec rb.yml -e <hidden>"},
		{"a JSON value", `runbook exec rb.yml -e {"a":_"b"}`, "runbook exec rb.yml -e <hidden>"},
		{"the value of another flag is kept", "runbook exec rb.yml -i inv.yml -f 3 -l h1 -e k=v --tags=a,b",
			"runbook exec rb.yml -i inv.yml -f 3 -l h1 -e <hidden> --tags=a,b"},
		{"a value taking shorthand ends the word", "runbook exec rb.yml -ie.yml", "runbook exec rb.yml -ie.yml"},
		{"the inventory flag takes e.yml, not -e", "runbook exec rb.yml -i -e", "runbook exec rb.yml -i -e"},
		{"-e as the value of another flag", "runbook exec rb.yml -l -e k=v", "runbook exec rb.yml -l -e k=v"},
		{"after --, arguments", "runbook exec -e k=v -- -e x=y", "runbook exec -e <hidden> -- -e x=y"},
		{"bool with =", "runbook exec rb.yml -y=true -e k=v", "runbook exec rb.yml -y=true -e <hidden>"},
		{"value missing at the end", "runbook exec rb.yml -e", "runbook exec rb.yml -e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, a := range strings.Split(tt.args, " ") {
				args = append(args, strings.ReplaceAll(a, "_", " "))
			}
			got := strings.Join(redactArgs(fs, args), " ")
			if got != tt.want {
				t.Errorf("redactArgs(%q)\n got %q\nwant %q", tt.args, got, tt.want)
			}
		})
	}
	if got := redactArgs(fs, nil); got != nil {
		t.Errorf("redactArgs(nil) = %q", got)
	}
}

// TestSecretFlags: every -e a command takes is marked secret.
func TestSecretFlags(t *testing.T) {
	root := newRootCmd(&app{})
	var with []string
	for _, c := range root.Commands() {
		if f := c.Flags().Lookup("extra-vars"); f != nil {
			if !isSecretFlag(f) {
				t.Errorf("%s: -e is not marked secret", c.Name())
			}
			with = append(with, c.Name())
		}
	}
	slices.Sort(with)
	if !slices.Equal(with, []string{"exec", "plan", "resume", "validate"}) {
		t.Errorf("commands with -e: %q", with)
	}
}

// TestDiagnosticsRedacted: an error that quotes an -e value shows it redacted,
// also when the -e itself could not be read.
func TestDiagnosticsRedacted(t *testing.T) {
	dir := t.TempDir()
	rb := writeTestFile(t, dir, "rb.yml", "runbook: t\nhosts: all\nsteps:\n  - shell: 'echo hi'\n")
	inv := writeTestFile(t, dir, "inv.yml", "all:\n  hosts: { h1: { ansible_connection: local } }\n")
	tests := []struct{ extra, want string }{
		{"ansible_port=S3CR3T-tok-1", `ansible_port: "<redacted>" is not a port number`},
		{`{"pw": "S3CR3T-tok-1"`, `-e "<redacted>": invalid YAML`},
		{"pw='S3CR3T-tok-1", `-e "<redacted>": unbalanced ' quote`},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main([]string{"plan", rb, "-i", inv, "-e", tt.extra}, strings.NewReader(""), &out, &errb)
			if code != exitcode.Invalid {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitcode.Invalid, out.String(), errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "S3CR3T-tok-1") {
				t.Errorf("the diagnostics show the -e value:\n%s", errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("the diagnostic does not say %q:\n%s", tt.want, errb.String())
			}
		})
	}
}

// TestTypedExtraVarsInErrors: a command line refused before it was read, as
// cobra quotes it, does not show what was given as -e.
func TestTypedExtraVarsInErrors(t *testing.T) {
	for _, args := range [][]string{
		{"show", "-epw=S3cret-typo1"},
		{"runs", "-yepw=S3cret-typo1"},
		{"exec", "rb.yml", "--extra-vars=pw=S3cret-typo1", "--bogus"},
		{"exec", "rb.yml", "-e", "pw=S3cret-typo1", "--forks=x"},
	} {
		var out, errw bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errw)
		if code != exitcode.Invalid {
			t.Errorf("%q: exit %d, want %d", args, code, exitcode.Invalid)
		}
		if strings.Contains(errw.String(), "S3cret-typo1") || !strings.Contains(errw.String(), "runbook: ") {
			t.Errorf("%q: stderr %q", args, errw.String())
		}
	}
}
