// Package redact keeps secrets out of events, logs, output and errors: a Set
// collects the secrets a run has seen (-e values, decrypted inventory values,
// what no_log steps render, the controller's own) and replaces them wherever
// they turn up, in values, in text and in streams.
package redact

import (
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Placeholder replaces every occurrence of a secret.
const Placeholder = "<redacted>"

// CensoredMessage is what a no_log step's result says instead of its output, in
// Ansible's words, so that operators who know Ansible recognise it.
const CensoredMessage = "the output has been hidden because no_log: true"

// CensoredError replaces the error of a failed no_log step: an error message often
// quotes the command or its stderr, which are the step's arguments and output.
const CensoredError = "the error has been hidden because no_log: true"

// MinSubstring is the shortest secret that is replaced inside longer strings.
// A shorter secret ("42", "ab") would shred unrelated text if replaced as a
// substring, so it is replaced only where a whole string equals it.
const MinSubstring = 4

// Censored returns the result recorded for a no_log step. Each call returns a
// new map, so a sink may keep or change it.
func Censored() map[string]any {
	return map[string]any{"censored": CensoredMessage}
}

// Set is the secrets of one run. Only values explicitly marked (-e values,
// values from encrypted sources, what no_log steps render) are added: guessing
// by names would both miss secrets and hide ordinary values. A nil *Set holds no secrets,
// and its methods still copy values. A Set is safe for concurrent use.
type Set struct {
	mu      sync.RWMutex
	long    map[string]struct{} // replaced as substrings
	short   map[string]struct{} // replaced only as whole strings
	forms   map[string]struct{} // long secrets as quoted or escaped text: see encodedForms
	replace *strings.Replacer   // built lazily from long; nil when stale
	stream  *streamIndex        // likewise, for Writer
}

// Add records secrets. Empty and blank strings are ignored (redacting them would
// redact nothing or everything). A multi-line secret, such as a private key, is
// also recorded line by line, because output often quotes one line of it.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		s.addLocked(sec)
		if strings.Contains(sec, "\n") {
			for _, line := range strings.Split(sec, "\n") {
				s.addLocked(strings.TrimSpace(line))
			}
		}
	}
}

func (s *Set) addLocked(sec string) {
	if strings.TrimSpace(sec) == "" {
		return
	}
	if len(sec) < MinSubstring {
		if s.short == nil {
			s.short = map[string]struct{}{}
		}
		s.short[sec] = struct{}{}
		return
	}
	if s.long == nil {
		s.long = map[string]struct{}{}
	}
	if _, ok := s.long[sec]; !ok {
		s.long[sec] = struct{}{}
		s.replace, s.stream = nil, nil
		for _, f := range encodedForms(sec) {
			if s.forms == nil {
				s.forms = map[string]struct{}{}
			}
			s.forms[f] = struct{}{}
		}
	}
}

// encodedForms returns the ways sec is written when text quotes or escapes
// it, besides sec itself: a command line quoted for a shell shows it'\”s
// for it's, an error made with %q or a JSON document shows \" for ", a URL
// shows %20 for a space. A password with a quote in it is common, and the
// message that quotes the command it was given to must not show it.
func encodedForms(sec string) []string {
	var forms []string
	add := func(f string) {
		if f != sec && len(f) >= MinSubstring && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	inner := func(q string) string { return q[1 : len(q)-1] }
	add(inner(strconv.Quote(sec)))        // Go's %q
	add(inner(strconv.QuoteToASCII(sec))) // Go's %+q
	if b, err := json.Marshal(sec); err == nil {
		add(inner(string(b))) // JSON, with <, > and & escaped
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(sec) == nil {
		add(inner(strings.TrimSuffix(b.String(), "\n")))
	}
	add(strings.ReplaceAll(sec, "'", `'\''`)) // POSIX shell, inside '...'
	py := strings.ReplaceAll(sec, `\`, `\\`)
	add(strings.ReplaceAll(py, "'", `\'`)) // Python's repr, inside '...'
	add(url.QueryEscape(sec))
	add(url.PathEscape(sec))
	add(strings.Join(strings.Fields(sec), " ")) // a label on one line (a loop item)
	return forms
}

// Merge adds the secrets of other to s. Either may be nil (a nil s adds
// nothing); merging a set into itself changes nothing.
func (s *Set) Merge(other *Set) {
	if s == nil || other == nil || s == other {
		return
	}
	other.mu.RLock()
	secrets := make([]string, 0, len(other.long)+len(other.short))
	for sec := range other.long {
		secrets = append(secrets, sec)
	}
	for sec := range other.short {
		secrets = append(secrets, sec)
	}
	other.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		s.addLocked(sec)
	}
}

// AddValue records every string inside v (maps, lists, structs, deeply) and the
// text form of every number: an -e value, a decrypted one, what a no_log
// step's templates render. Booleans and nil are not secrets, and neither is a
// value shorter than MinSubstring: such values ("1", "m1", "22") are the
// ordinary words of every result, and hiding each equal word would hide the
// run without protecting anything. Add records a short secret when a caller
// knows it is one.
func (s *Set) AddValue(v any) {
	var leaves []string
	collect(reflect.ValueOf(v), &leaves, 0)
	long := leaves[:0]
	for _, l := range leaves {
		if len(strings.TrimSpace(l)) >= MinSubstring {
			long = append(long, l)
		}
	}
	s.Add(long...)
}

// maxDepth bounds the walk over values: a cycle through pointers must not hang
// the run that tries to hide a secret.
const maxDepth = 64

func collect(v reflect.Value, out *[]string, depth int) {
	if !v.IsValid() || depth > maxDepth {
		return
	}
	switch v.Kind() {
	case reflect.String:
		*out = append(*out, v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		*out = append(*out, fmt.Sprint(v.Interface()))
	case reflect.Pointer, reflect.Interface:
		collect(v.Elem(), out, depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			*out = append(*out, string(v.Bytes()))
			return
		}
		for i := 0; i < v.Len(); i++ {
			collect(v.Index(i), out, depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			collect(it.Value(), out, depth+1)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				collect(v.Field(i), out, depth+1)
			}
		}
	}
}

// Len is the number of distinct secrets recorded.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.long) + len(s.short)
}

// Redact returns str with every secret replaced by Placeholder. A secret shorter
// than MinSubstring is replaced only when it is the whole of str.
func (s *Set) Redact(str string) string {
	if s == nil || str == "" {
		return str
	}
	s.mu.RLock()
	_, isShort := s.short[str]
	r := s.replace
	stale := r == nil && len(s.long) > 0
	s.mu.RUnlock()
	if isShort {
		return Placeholder
	}
	if stale {
		r = s.replacer()
	}
	if r != nil {
		str = r.Replace(str)
	}
	return s.redactCuts(str)
}

// truncatedMark ends the line that a capture of command output (conn.Tail)
// puts before what it kept when it dropped the start: the kept text may then
// begin in the middle of a secret, with only its end left to see.
const truncatedMark = " earlier bytes dropped]\n"

// cutMarks are what text cut short shows where it was cut: the line of
// conn.Tail, and the ellipses of a message that quotes only the start of a
// value (the last line of a command's stderr, a loop item) or only its end.
// Next to one, a secret may show only in part.
var cutMarks = []string{truncatedMark, "…", "..."}

// redactCuts replaces, beside each cut mark in str, the longest start of a
// secret that ends at the mark and the longest end of one that begins after
// it (of MinSubstring bytes or more).
func (s *Set) redactCuts(str string) string {
	for _, m := range cutMarks {
		if !strings.Contains(str, m) {
			continue
		}
		parts := strings.Split(str, m)
		for j := range parts {
			if j > 0 {
				parts[j] = s.cutHead(parts[j])
			}
			if j < len(parts)-1 {
				parts[j] = s.cutTail(parts[j])
			}
		}
		str = strings.Join(parts, m)
	}
	return str
}

// cutHead replaces the longest end of a secret that head begins with.
func (s *Set) cutHead(head string) string {
	idx := s.index()
	if idx == nil || idx.longest <= MinSubstring {
		return head
	}
	// The start of head reversed, so that an end of a secret is a start
	// of one of idx.reversed.
	rh := reverse(head[:min(len(head), idx.longest-1)])
	for n := len(rh); n >= MinSubstring; n-- {
		if idx.last[head[n-1]] && extends(idx.reversed, rh[len(rh)-n:]) {
			return Placeholder + head[n:]
		}
	}
	return head
}

// cutTail replaces the longest start of a secret that tail ends with.
func (s *Set) cutTail(tail string) string {
	idx := s.index()
	if idx == nil {
		return tail
	}
	for p := max(0, len(tail)-idx.longest+1); p <= len(tail)-MinSubstring; p++ {
		if len(idx.byFirst[tail[p]]) > 0 && extends(idx.sorted, tail[p:]) {
			return tail[:p] + Placeholder
		}
	}
	return tail
}

// substrings yields every text replaced inside longer text: the long secrets
// and their encoded forms. The caller holds s.mu.
func (s *Set) substrings() iter.Seq[string] {
	return func(yield func(string) bool) {
		for sec := range s.long {
			if !yield(sec) {
				return
			}
		}
		for f := range s.forms {
			if _, dup := s.long[f]; dup {
				continue
			}
			if !yield(f) {
				return
			}
		}
	}
}

// isSecret reports whether str is, whole, one of the secrets.
func (s *Set) isSecret(str string) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, short := s.short[str]
	_, long := s.long[str]
	return short || long
}

// replacer builds the replacer once per change of the set. Longer secrets come
// first because strings.Replacer tries its pairs in order at each position, so a
// secret that contains another is replaced whole.
func (s *Set) replacer() *strings.Replacer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replace != nil || len(s.long) == 0 {
		return s.replace
	}
	secrets := make([]string, 0, len(s.long)+len(s.forms))
	for sec := range s.substrings() {
		secrets = append(secrets, sec)
	}
	sort.Slice(secrets, func(i, j int) bool {
		if len(secrets[i]) != len(secrets[j]) {
			return len(secrets[i]) > len(secrets[j])
		}
		return secrets[i] < secrets[j]
	})
	pairs := make([]string, 0, 2*len(secrets))
	for _, sec := range secrets {
		pairs = append(pairs, sec, Placeholder)
	}
	s.replace = strings.NewReplacer(pairs...)
	return s.replace
}

// RedactValue returns a deep copy of v made of JSON-safe values (maps with string
// keys, []any, strings, numbers, booleans, nil, time values) with every secret
// replaced, in map keys too. The copy shares nothing with v, so a sink may keep it
// while the caller goes on changing v. Values of other types (structs, typed
// slices) are converted through their JSON form, which is how they would be
// journaled anyway.
func (s *Set) RedactValue(v any) any {
	return s.value(reflect.ValueOf(v), 0, false)
}

// RedactMap is RedactValue for the common case of a map; nil stays nil.
func (s *Set) RedactMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out, _ := s.value(reflect.ValueOf(m), 0, false).(map[string]any)
	return out
}

// RedactMapText is RedactMap for records whose numbers are counts and ids the
// engine made (a run's pid, seed, exit code): only text is redacted, so that
// a number equal to a secret by chance keeps its type and the record stays
// readable.
func (s *Set) RedactMapText(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out, _ := s.value(reflect.ValueOf(m), 0, true).(map[string]any)
	return out
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	numberType   = reflect.TypeOf(json.Number(""))
	errorType    = reflect.TypeOf((*error)(nil)).Elem()
)

func (s *Set) value(v reflect.Value, depth int, textOnly bool) any {
	if !v.IsValid() {
		return nil
	}
	if depth > maxDepth {
		return "<too deeply nested>"
	}
	switch v.Type() {
	case timeType, durationType:
		return v.Interface()
	case numberType:
		if !textOnly && s.isSecret(v.String()) {
			return Placeholder
		}
		return json.Number(v.String())
	}
	if v.Kind() != reflect.Interface && v.Kind() != reflect.Pointer && v.Type().Implements(errorType) {
		return s.Redact(v.Interface().(error).Error())
	}
	switch v.Kind() {
	case reflect.String:
		return s.Redact(v.String())
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		// A number is a secret too when it was one (a PIN). Only a whole match
		// counts: a number is not text, and a pid or a count that happens to
		// hold a secret's digits must keep its type for the journal to read.
		if !textOnly && s.isSecret(fmt.Sprint(v.Interface())) {
			return Placeholder
		}
		return v.Interface()
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return s.value(v.Elem(), depth+1, textOnly)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if v.Type().Implements(errorType) {
			return s.Redact(v.Interface().(error).Error())
		}
		return s.value(v.Elem(), depth+1, textOnly)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			// Bytes are text in practice (command output); JSON would write them
			// as base64, where no secret could be found.
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return s.Redact(string(b))
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = s.value(v.Index(i), depth+1, textOnly)
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return s.viaJSON(v, depth, textOnly)
		}
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			out[s.Redact(it.Key().String())] = s.value(it.Value(), depth+1, textOnly)
		}
		return out
	}
	return s.viaJSON(v, depth, textOnly)
}

// viaJSON handles structs and other values by their JSON form. A value that
// cannot be encoded (a channel, a func) becomes its redacted text, never itself.
func (s *Set) viaJSON(v reflect.Value, depth int, textOnly bool) any {
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return s.Redact(fmt.Sprintf("%v", v.Interface()))
	}
	var generic any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return s.Redact(string(b))
	}
	return s.value(reflect.ValueOf(generic), depth+1, textOnly)
}

// Error returns err with its message redacted, keeping the chain below it for
// errors.Is and errors.As. Nil stays nil; an error with nothing to redact is
// returned as it is. Print only the returned error: a cause found by errors.As
// still carries its own, unredacted, message.
func (s *Set) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := s.Redact(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
