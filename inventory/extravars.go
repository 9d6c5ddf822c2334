package inventory

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
	"github.com/runbookhq/runbook/internal/input"
	"github.com/runbookhq/runbook/inventory/vault"
)

// ParseExtraVars reads -e arguments as ansible-playbook does, later ones
// overriding earlier ones (a map replaces a map):
//
//	k=v k2="two words"   pairs; values stay strings, as in Ansible
//	@vars.yml            a YAML (or JSON) file holding a mapping; relative to baseDir
//	{"a": 1}             a YAML or JSON mapping literal
//
// Errors in a file or literal carry its line and column. Vault-encrypted data
// is refused; ParseExtraVarsWith decrypts it.
func ParseExtraVars(args []string, baseDir string) (map[string]any, error) {
	vars, _, err := ParseExtraVarsWith(args, baseDir, Options{})
	return vars, err
}

// ParseExtraVarsWith is ParseExtraVars with the vault passwords that decrypt
// an @file encrypted whole and !vault values, as ansible-playbook does. It also
// returns every decrypted value (see Inventory.Secrets), sorted.
func ParseExtraVarsWith(args []string, baseDir string, opts Options) (map[string]any, []string, error) {
	v := newVaultState(opts.Vault)
	out, err := parseExtraVars(args, baseDir, v)
	if err != nil {
		return nil, nil, err
	}
	secrets := make([]string, 0, len(v.plain))
	for s := range v.plain {
		secrets = append(secrets, s)
	}
	sort.Strings(secrets)
	return out, secrets, nil
}

func parseExtraVars(args []string, baseDir string, v *vaultState) (map[string]any, error) {
	out := map[string]any{}
	for _, arg := range args {
		if arg == "" {
			continue
		}
		var (
			vars map[string]any
			err  error
		)
		switch {
		case arg[0] == '@':
			vars, err = extraVarsFile(arg[1:], baseDir, v)
		case arg[0] == '/' || arg[0] == '.':
			err = fmt.Errorf("-e %q: to read a file, prefix its name with @: -e @%s", arg, arg)
		case arg[0] == '{' || arg[0] == '[':
			vars, err = extraVarsYAML("-e", []byte(arg), v, false)
		default:
			vars, err = parseKV(arg)
		}
		if err != nil {
			return nil, err
		}
		for k, v := range vars {
			out[k] = v
		}
	}
	return out, nil
}

func extraVarsFile(name, baseDir string, v *vaultState) (map[string]any, error) {
	if name == "" {
		return nil, errors.New("-e @: a file name must follow the @")
	}
	path := name
	if !filepath.IsAbs(path) && baseDir != "" {
		path = filepath.Join(baseDir, path)
	}
	data, err := input.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-e @%s: cannot read %s: %s", name, path, describeErr(err))
	}
	whole := vault.IsEncrypted(data)
	if whole {
		var ds diag.Diags
		if data, ok := v.decrypt(data, diag.Pos{File: path, Line: 1, Col: 1}, "the file", &ds); ok {
			return extraVarsYAML(path+decryptedSuffix, data, v, true)
		}
		return nil, ds.Err()
	}
	return extraVarsYAML(path, data, v, false)
}

// extraVarsYAML reads a YAML mapping; file names it in errors ("-e" for a literal).
// whole says the data was decrypted from a file encrypted whole: all its values are secrets.
func extraVarsYAML(file string, data []byte, vs *vaultState, whole bool) (map[string]any, error) {
	root, ds := parseYAMLDoc(file, data)
	if ds.HasErrors() {
		if file == "-e" { // a one-line literal: its text says more than a line number
			return nil, fmt.Errorf("-e %q: %s", data, ds.Errors()[0].Message())
		}
		return nil, ds.Err()
	}
	if root == nil || resolve(root).Kind != yaml.MappingNode {
		what := "nothing"
		p := diag.Pos{File: file}
		if root != nil {
			what = "a " + kindName(root)
			p.Line, p.Col = root.Line, root.Column
		}
		if file == "-e" {
			return nil, fmt.Errorf("-e %q: extra vars must be a mapping, got %s", data, what)
		}
		var d diag.Diags
		d.Add(p, "extra vars must be a mapping of names to values, got "+what, "")
		return nil, d.Err()
	}
	c := newYconv(file, &ds)
	c.vault = vs
	v, _ := c.value(root).(map[string]any)
	if ds.HasErrors() {
		return nil, ds.Err()
	}
	if whole {
		vs.whole(v)
	}
	return v, nil
}

// parseKV reads "k=v k2='v 2'" as Ansible's parse_kv: words are split on
// spaces outside quotes and {{ }}, backslash escapes are decoded, a value in
// matching quotes loses them, and every value is a string.
func parseKV(arg string) (map[string]any, error) {
	words, err := splitArgs(arg)
	if err != nil {
		return nil, fmt.Errorf("-e %q: %v", arg, err)
	}
	out := map[string]any{}
	for _, w := range words {
		x := decodeEscapes(w)
		eq := -1
		for i := 1; i < len(x); i++ {
			if x[i] == '=' && x[i-1] != '\\' {
				eq = i
				break
			}
		}
		if eq < 0 {
			return nil, fmt.Errorf("-e %q: %q is not name=value; want name=value pairs, @file or a YAML/JSON mapping", arg, w)
		}
		k := strings.TrimSpace(x[:eq])
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("-e %q: %q is not a variable name", arg, k)
		}
		out[k] = unquote(strings.TrimSpace(x[eq+1:]))
	}
	return out, nil
}

// splitArgs splits on whitespace, keeping quoted text and {{ }} / {% %} / {# #}
// blocks whole (quotes stay in the words, as in Ansible's split_args).
func splitArgs(s string) ([]string, error) {
	var (
		words []string
		b     strings.Builder
		quote byte
		depth int // open template blocks
	)
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(s) {
				b.WriteByte(c)
				i++
				b.WriteByte(s[i])
				continue
			}
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
		case c == '{' && i+1 < len(s) && strings.IndexByte("{%#", s[i+1]) >= 0:
			depth++
			b.WriteString(s[i : i+2])
			i++
		case depth > 0 && i+1 < len(s) && strings.IndexByte("}%#", c) >= 0 && s[i+1] == '}':
			depth--
			b.WriteString(s[i : i+2])
			i++
		case c == '"' || c == '\'':
			quote = c
			b.WriteByte(c)
		case depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			flush()
		default:
			b.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced %c quote", quote)
	}
	if depth > 0 {
		return nil, errors.New("unbalanced template block ({{ without }})")
	}
	flush()
	return words, nil
}

func unquote(s string) string {
	if len(s) > 1 && s[0] == s[len(s)-1] && (s[0] == '"' || s[0] == '\'') && s[len(s)-2] != '\\' {
		return s[1 : len(s)-1]
	}
	return s
}

// decodeEscapes decodes the Python escapes Ansible's parse_kv decodes: \\ \' \"
// \a \b \f \n \r \t \v, \xHH, \uHHHH, \UHHHHHHHH and octal \ooo.
func decodeEscapes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		e := s[i+1]
		if r, ok := simpleEscapes[e]; ok {
			b.WriteByte(r)
			i++
			continue
		}
		width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
		if width > 0 && i+2+width <= len(s) {
			if n, err := strconv.ParseUint(s[i+2:i+2+width], 16, 32); err == nil && n <= utf8.MaxRune {
				b.WriteRune(rune(n))
				i += 1 + width
				continue
			}
		}
		if e >= '0' && e <= '7' {
			j := i + 1
			for j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[i+1:j], 8, 32)
			b.WriteRune(rune(n))
			i = j - 1
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var simpleEscapes = map[byte]byte{
	'\\': '\\', '\'': '\'', '"': '"', 'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
}
