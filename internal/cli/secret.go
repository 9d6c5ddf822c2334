package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runbookhq/runbook/internal/redact"
)

// secretAnnotation marks a flag whose value may be a secret (-e, a vault
// password file): the command line a journal records hides it.
const secretAnnotation = "runbook_secret"

// hiddenArg replaces the value of a secret flag in a recorded command line.
const hiddenArg = "<hidden>"

// markSecretFlags marks the flags names of cmd as holding secrets.
func markSecretFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.Flags().SetAnnotation(n, secretAnnotation, []string{"true"}); err != nil {
			panic("cli: marking flag " + n + " secret: " + err.Error()) // a typo in a flag name
		}
	}
}

func isSecretFlag(f *pflag.Flag) bool { return f != nil && len(f.Annotations[secretAnnotation]) > 0 }

// redactArgs returns the command line args (program name first) with the
// value of every secret flag of fs replaced by hiddenArg. It reads args as
// pflag parses them, so every way of writing a flag is covered: "-e k=v",
// "-ek=v", "-e=k=v", "--extra-vars k=v", "--extra-vars=k=v", and shorthands
// run together ("-ye k=v", "-yek=v"), where each letter is a flag until one
// takes a value. Everything after "--" is an argument, as pflag reads it.
func redactArgs(fs *pflag.FlagSet, args []string) []string {
	if len(args) == 0 {
		return nil
	}
	out := []string{args[0]}
	args = args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"):
			name, _, inline := strings.Cut(a[2:], "=")
			fl := fs.Lookup(name)
			switch {
			case fl == nil:
				out = append(out, a)
			case inline:
				if isSecretFlag(fl) {
					a = "--" + name + "=" + hiddenArg
				}
				out = append(out, a)
			case fl.NoOptDefVal == "" && i+1 < len(args):
				// pflag takes the next word as the value, whatever it looks like.
				i++
				out = append(out, a, valueOf(fl, args[i]))
			default:
				out = append(out, a)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			word, next := shorthands(fs, a[1:])
			out = append(out, "-"+word)
			if next != nil && i+1 < len(args) {
				i++
				out = append(out, valueOf(next, args[i]))
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// shorthands reads a word of shorthand flags (without its "-") as pflag's
// parseSingleShortArg does, letter by letter: a flag that takes a value takes
// the rest of the word ("-ek=v", "-e=k=v") or, when the word ends with it, the
// next word, returned as next.
func shorthands(fs *pflag.FlagSet, word string) (shown string, next *pflag.Flag) {
	var b strings.Builder
	for j := 0; j < len(word); j++ {
		c := word[j : j+1]
		b.WriteString(c)
		fl := fs.ShorthandLookup(c)
		if fl == nil {
			// cobra refused the command line already; show the rest as typed.
			b.WriteString(word[j+1:])
			return b.String(), nil
		}
		rest := word[j+1:]
		switch {
		case len(rest) > 1 && rest[0] == '=':
			b.WriteString("=" + valueOf(fl, rest[1:]))
			return b.String(), nil
		case fl.NoOptDefVal != "":
			continue // a flag without a value (-y); the next letter is another flag
		case rest != "":
			b.WriteString(valueOf(fl, rest))
			return b.String(), nil
		default:
			return b.String(), fl
		}
	}
	return b.String(), nil
}

func valueOf(fl *pflag.Flag, v string) string {
	if isSecretFlag(fl) {
		return hiddenArg
	}
	return v
}

// redacting returns a copy of a whose output goes through s: whatever a
// command prints from then on (views, logs, errors, prompts) has every secret
// of s replaced, also one split across writes. flush writes what the writers
// hold back; call it when the command ends.
func (a *app) redacting(s *redact.Set) (ra *app, flush func()) {
	out, errw := redact.NewWriter(a.stdout, s), redact.NewWriter(a.stderr, s)
	ra = &app{stdin: a.stdin, stdout: out, stderr: errw, secrets: s}
	return ra, func() {
		out.Flush()
		errw.Flush()
	}
}
