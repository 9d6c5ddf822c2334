package redact

import "strings"

// ControllerEnv names the environment variables that carry the controller's
// own secrets: what runbook itself reads to log in or decrypt, never meant for
// the commands it runs. Besides these, every RUNBOOK_ variable whose name ends
// in one of secretEnvSuffixes is taken as one, so that a secret the CLI learns
// to read later is kept in by naming it so.
var ControllerEnv = []string{"RUNBOOK_SSH_PASSPHRASE"}

var secretEnvSuffixes = []string{"_PASSPHRASE", "_PASSWORD", "_TOKEN", "_SECRET"}

// IsControllerEnv reports whether the environment variable name holds a
// secret of the controller (see ControllerEnv).
func IsControllerEnv(name string) bool {
	for _, n := range ControllerEnv {
		if name == n {
			return true
		}
	}
	if !strings.HasPrefix(name, "RUNBOOK_") {
		return false
	}
	for _, suf := range secretEnvSuffixes {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// ChildEnv returns environ ("NAME=value" entries, as os.Environ gives them)
// without the controller's secrets: the environment a command started by the
// controller inherits. A shell step that prints its environment must not show
// the passphrase of the operator's SSH key.
func ChildEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !IsControllerEnv(name) {
			out = append(out, kv)
		}
	}
	return out
}

// AddControllerEnv records the values of the controller's secret variables
// found in environ, so that one that turns up anyway (a command that reads it
// from somewhere else, an error quoting it) is replaced too.
func (s *Set) AddControllerEnv(environ []string) {
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && IsControllerEnv(name) {
			s.Add(value)
		}
	}
}
