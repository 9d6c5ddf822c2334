package arg

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/internal/diag"
)

// maxVisits bounds the nodes one Decoder walks. Aliases let a small file name
// a huge tree ("billion laughs"); yaml.v3 guards its own decoder against that,
// but we walk the nodes ourselves, so we need our own limit.
const maxVisits = 1 << 20

// Decoder fills Go values from YAML nodes strictly: every key must match a
// `yaml` tag, scalars must convert, fields tagged `runbook:"required"` must be
// present. It records every problem in the Diags it is given and keeps going,
// so that one pass reports all the errors of a file.
//
// Supported targets: string, bool, integers, floats, structs (by `yaml` tags,
// with `,inline`), map[string]T, []T, *T, any (plain values: string, int,
// float64, bool, []any, map[string]any, nil), yaml.Node and *yaml.Node (kept
// raw), and any type whose pointer implements NodeDecoder.
//
// A Decoder may be reused for several Decode calls on the same file; the alias
// expansion budget is shared between them.
type Decoder struct {
	// File names the file in diagnostic positions.
	File string
	// Source is the file's content. It is optional; with it, positions of text
	// inside block scalars (`|`, `>`) are exact.
	Source []byte
	// Context names what the root mapping is, in messages: `unknown key "servce"
	// in stop`. Empty means the top level of the file.
	Context string
	// OnTemplate, when set, turns on template mode: a string scalar containing
	// "{{" is not converted (the target is left zero, and a key holding it counts
	// as present), and is passed to OnTemplate so the caller can compile it.
	// Expr values are exempt: an expression is never a template.
	OnTemplate func(n *yaml.Node)
	// Unrendered, when set with OnTemplate, says which templated scalars are
	// templates left to render; the others are rendered values that happen to
	// hold "{{", decoded as any value. Nil means every one is a template.
	Unrendered func(n *yaml.Node) bool
	// OnExpr, when set, is called after an Expr value is decoded, with the YAML
	// key that holds it, so the caller can compile it (set e.Program) before the
	// value is copied into its parent.
	OnExpr func(e *Expr, key string)

	srcLines []string // Source split into lines, once
	path     string   // display path of the value being decoded: "etcd.dest", "tags[1]"
	key      string   // the last mapping key on the path
	visits   int
	overrun  bool
	active   map[*yaml.Node]bool // anchors being expanded, to refuse cycles
}

// Decode fills out, which must be a non-nil pointer, from n.
func (d *Decoder) Decode(n *yaml.Node, out any, ds *diag.Diags) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		ds.Errorf(d.Pos(n), "internal error: cannot decode into %T (want a non-nil pointer)", out)
		return
	}
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	savedPath, savedKey := d.path, d.key
	d.path, d.key = "", ""
	d.value(n, v.Elem(), ds)
	d.path, d.key = savedPath, savedKey
}

// DecodeValue fills out (a non-nil pointer) from n like Decode, but keeps the
// current key path for messages. A NodeDecoder that accepts a shorthand uses
// it to decode its long form strictly:
//
//	type plain Args // no DecodeNode: decoded by yaml tags
//	d.DecodeValue(n, (*plain)(a), ds)
func (d *Decoder) DecodeValue(n *yaml.Node, out any, ds *diag.Diags) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		ds.Errorf(d.Pos(n), "internal error: cannot decode into %T (want a non-nil pointer)", out)
		return
	}
	d.value(n, v.Elem(), ds)
}

// Pos is the position of n in the file.
func (d *Decoder) Pos(n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{File: d.File}
	}
	return diag.Pos{File: d.File, Line: n.Line, Col: n.Column}
}

// ValuePos is where the text of scalar n starts: after the opening quote of a
// quoted scalar, on the first content line of a block scalar. Expressions are
// compiled from this position so that their errors point into the text.
func (d *Decoder) ValuePos(n *yaml.Node) diag.Pos {
	p := d.Pos(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return p
	}
	switch {
	case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
		p.Col++
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The value starts on the line after the `|` or `>` indicator, at the
		// block's indentation, which only the source tells.
		p.Line++
		p.Col = d.blockIndent(n.Line) + 1
	}
	return p
}

// ValuePositions returns the file position of each rune of the value of
// scalar n, and one more for where it ends, when its text is not laid out in the file as in the value: a
// folded block (>), or a plain or quoted scalar over several lines (YAML
// joins their lines with spaces), or one with escapes ("\t"). Then the line
// and column of a place in the value can only be found by walking the
// source. It returns nil when ValuePos and the value's own lines are exact
// (one line as written, a literal block).
func (d *Decoder) ValuePositions(n *yaml.Node) []diag.Pos {
	if n == nil || n.Kind != yaml.ScalarNode || len(d.Source) == 0 || n.Line < 1 {
		return nil
	}
	switch {
	case n.Style&yaml.FoldedStyle != 0:
		return d.foldedPositions(n)
	case n.Style&yaml.LiteralStyle != 0:
		return nil
	}
	return d.flowPositions(n)
}

// flowPositions walks a plain or quoted scalar's source beside its value.
func (d *Decoder) flowPositions(n *yaml.Node) []diag.Pos {
	lines := d.lines()
	if n.Line > len(lines) {
		return nil
	}
	start := d.ValuePos(n)
	first := []rune(strings.TrimRight(lines[n.Line-1], "\r"))
	if start.Col-1 > len(first) {
		return nil
	}
	if strings.HasPrefix(string(first[start.Col-1:]), n.Value) {
		return nil // on one line, as written
	}
	// The source from the value's start, rune by rune, with positions.
	type at struct {
		r   rune
		pos diag.Pos
	}
	var src []at
	for i := n.Line - 1; i < len(lines) && len(src) < 4*len(n.Value)+64; i++ {
		l := []rune(strings.TrimRight(lines[i], "\r"))
		from := 0
		if i == n.Line-1 {
			from = start.Col - 1
		}
		for j := from; j < len(l); j++ {
			src = append(src, at{l[j], diag.Pos{File: d.File, Line: i + 1, Col: j + 1}})
		}
		src = append(src, at{'\n', diag.Pos{File: d.File, Line: i + 1, Col: len(l) + 1}})
	}
	double := n.Style&yaml.DoubleQuotedStyle != 0
	single := n.Style&yaml.SingleQuotedStyle != 0
	blank := func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }
	out := make([]diag.Pos, 0, len(n.Value))
	k := 0
	for _, r := range n.Value {
		if k >= len(src) {
			out = append(out, src[len(src)-1].pos)
			continue
		}
		c := src[k]
		out = append(out, c.pos)
		switch {
		case double && c.r == '\\':
			k += 2 + escapeLen(src[min(k+1, len(src)-1)].r)
		case single && c.r == '\'' && k+1 < len(src) && src[k+1].r == '\'':
			k += 2
		case c.r == r && c.r != '\n':
			k++
		case blank(r) && blank(c.r):
			// A line break YAML folded: the breaks and the indentation
			// around it make one space (or a newline for a blank line).
			j := k
			for j < len(src) && blank(src[j].r) && src[j].r != '\n' {
				j++
			}
			if j < len(src) && src[j].r == '\n' {
				for j < len(src) && blank(src[j].r) {
					j++
				}
				k = j
			} else {
				k++
			}
		default:
			k++
		}
	}
	// And where the value ends, for an error at its end ("unexpected EOF").
	return append(out, src[min(k, len(src)-1)].pos)
}

// escapeLen is how many characters follow the letter of a YAML escape
// ("\x41": 2).
func escapeLen(r rune) int {
	switch r {
	case 'x':
		return 2
	case 'u':
		return 4
	case 'U':
		return 8
	}
	return 0
}

// foldedPositions walks a folded block's lines beside its value.
func (d *Decoder) foldedPositions(n *yaml.Node) []diag.Pos {
	lines := d.lines()
	indent := d.blockIndent(n.Line)
	// The block's lines after the header, each without its indentation.
	type srcLine struct {
		no   int // 1-based
		text []rune
	}
	var block []srcLine
	for i := n.Line; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) < indent {
			break
		}
		text := []rune{}
		if len(l) > indent {
			text = []rune(l[indent:])
		}
		block = append(block, srcLine{no: i + 1, text: text})
	}
	if len(block) == 0 {
		return nil
	}
	out := make([]diag.Pos, 0, len(n.Value))
	li, ci := 0, 0
	pos := func() diag.Pos {
		if li >= len(block) {
			last := block[len(block)-1]
			return diag.Pos{File: d.File, Line: last.no, Col: indent + len(last.text) + 1}
		}
		return diag.Pos{File: d.File, Line: block[li].no, Col: indent + ci + 1}
	}
	for _, r := range n.Value {
		if li < len(block) && ci < len(block[li].text) && block[li].text[ci] == r {
			out = append(out, pos())
			ci++
			continue
		}
		if r == ' ' || r == '\n' {
			// A line break the folding turned into a space, or kept.
			out = append(out, pos())
			li, ci = li+1, 0
			continue
		}
		// Blank lines whose breaks the folding consumed.
		for li < len(block) && ci >= len(block[li].text) {
			li, ci = li+1, 0
		}
		out = append(out, pos())
		if li < len(block) && ci < len(block[li].text) && block[li].text[ci] == r {
			ci++
		}
	}
	// And where the value ends, for an error at its end ("unexpected EOF").
	return append(out, pos())
}

// lines is the source split into lines.
func (d *Decoder) lines() []string {
	if d.srcLines == nil {
		d.srcLines = strings.Split(string(d.Source), "\n")
	}
	return d.srcLines
}

// blockIndent returns the indentation of the first non-blank line after line
// (1-based) in the source, or a guess when the source is unknown.
func (d *Decoder) blockIndent(line int) int {
	lines := d.lines()
	for i := line; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		return len(l) - len(strings.TrimLeft(l, " "))
	}
	return 2
}

// Name is the value being decoded as messages name it: the quoted key path
// (`"timeout"`, `"serial[1]"`), or the Context at the root. NodeDecoders use it
// so that their errors read like the decoder's own.
func (d *Decoder) Name() string {
	if d.path != "" {
		return strconv.Quote(d.path)
	}
	if d.Context != "" {
		return d.Context
	}
	return "the value"
}

// Key is the last mapping key on the path to the value being decoded.
func (d *Decoder) Key() string { return d.key }

// Path is the display path of the value being decoded ("etcd.dest",
// "tags[1]"), empty at the root.
func (d *Decoder) Path() string { return d.path }

// Within runs f with key appended to the path, so that messages about the
// values f decodes name them under key (the loader decodes a runbook's
// sections this way).
func (d *Decoder) Within(key string, f func()) { d.within(key, true, f) }

// Templated reports whether n is a string scalar holding a {{ }} template while
// the decoder is in template mode; if so it hands n to OnTemplate. A value that
// is templated must be left zero by the caller.
func (d *Decoder) Templated(n *yaml.Node) bool {
	if !d.template(n) {
		return false
	}
	d.OnTemplate(n)
	return true
}

// template reports whether n is a template the decoder leaves to OnTemplate.
func (d *Decoder) template(n *yaml.Node) bool {
	return d.OnTemplate != nil && IsTemplateScalar(n) && (d.Unrendered == nil || d.Unrendered(n))
}

// IsTemplateScalar reports whether n is a string scalar containing "{{".
func IsTemplateScalar(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && strings.Contains(n.Value, "{{")
}

// Resolve returns the node n stands for: the content of a document, the anchor
// an alias points to.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 8; i++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

// within runs f with the path extended by a key or an index, so messages name
// nested values.
func (d *Decoder) within(elem string, isKey bool, f func()) {
	savedPath, savedKey := d.path, d.key
	switch {
	case !isKey:
		d.path += elem
	case d.path == "":
		d.path = elem
	default:
		d.path += "." + elem
	}
	if isKey {
		d.key = elem
	}
	f()
	d.path, d.key = savedPath, savedKey
}

// where names the mapping being decoded for unknown and missing key messages.
func (d *Decoder) where() string {
	switch {
	case d.path == "" && d.Context == "":
		return "at the top level"
	case d.path == "":
		return "in " + d.Context
	case d.Context == "":
		return "in " + strconv.Quote(d.path)
	}
	return "in " + d.Context + "." + d.path
}

var (
	nodeType        = reflect.TypeOf(yaml.Node{})
	nodeDecoderType = reflect.TypeOf((*NodeDecoder)(nil)).Elem()
	rawScalarType   = reflect.TypeOf((*rawScalar)(nil)).Elem()
)

// rawScalar marks NodeDecoders whose text is never a template (Expr).
type rawScalar interface{ rawScalar() }

func (d *Decoder) value(n *yaml.Node, v reflect.Value, ds *diag.Diags) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, func(t *yaml.Node) { d.value(t, v, ds) }, ds)
		return
	}
	if !d.visit(n, ds) {
		return
	}
	if n.Anchor != "" {
		// An alias met inside its own anchor is then refused at once.
		defer d.enter(n)()
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			d.value(n.Content[0], v, ds)
		}
		return
	}
	if !d.knownTag(n, ds) {
		return
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case t.Kind() == reflect.Pointer && t.Elem() == nodeType:
		v.Set(reflect.ValueOf(n))
		return
	}
	if d.template(n) && !reflect.PointerTo(t).Implements(rawScalarType) {
		d.OnTemplate(n)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// An empty value leaves the target as it is (`timeout:` is no timeout),
		// except that a struct without its own decoder reads it as an empty
		// mapping, so that its required keys are reported.
		switch {
		case t.Kind() == reflect.Interface:
			v.Set(reflect.Zero(t))
			return
		case t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(nodeDecoderType):
			return
		}
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.value(n, v.Elem(), ds)
		return
	}
	if v.CanAddr() && reflect.PointerTo(t).Implements(nodeDecoderType) {
		v.Addr().Interface().(NodeDecoder).DecodeNode(d, n, ds)
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			ds.Errorf(d.Pos(n), "internal error: cannot decode %s into %s", d.Name(), t)
			return
		}
		if pv := d.plain(n, ds); pv != nil {
			v.Set(reflect.ValueOf(pv))
		} else {
			v.Set(reflect.Zero(t))
		}
	case reflect.Struct:
		d.structValue(n, v, ds)
	case reflect.Map:
		d.mapValue(n, v, ds)
	case reflect.Slice:
		d.sliceValue(n, v, ds)
	default:
		d.scalar(n, v, ds)
	}
}

// visit counts n against the budget and reports once when it is spent.
func (d *Decoder) visit(n *yaml.Node, ds *diag.Diags) bool {
	d.visits++
	if d.visits <= maxVisits {
		return true
	}
	if !d.overrun {
		d.overrun = true
		ds.Errorf(d.Pos(n), "the document expands to more than %d values through aliases", maxVisits)
	}
	return false
}

// alias expands an alias node, refusing an anchor that contains itself.
func (d *Decoder) alias(n *yaml.Node, f func(target *yaml.Node), ds *diag.Diags) {
	t := n.Alias
	if t == nil {
		ds.Errorf(d.Pos(n), "unknown anchor %q", n.Value)
		return
	}
	if d.active[t] {
		ds.Errorf(d.Pos(n), "alias *%s is used inside its own anchor", n.Value)
		return
	}
	defer d.enter(t)()
	f(t)
}

// enter marks anchored node n as being expanded until the returned func runs.
func (d *Decoder) enter(n *yaml.Node) func() {
	if d.active == nil {
		d.active = map[*yaml.Node]bool{}
	}
	if d.active[n] {
		return func() {}
	}
	d.active[n] = true
	return func() { delete(d.active, n) }
}

var knownTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true,
	"!!map": true, "!!seq": true, "!!timestamp": true, "!!binary": true, "!!merge": true,
}

// knownTag refuses custom tags (`!vault`): we cannot honour them, and silently
// reading the text would hide that.
func (d *Decoder) knownTag(n *yaml.Node, ds *diag.Diags) bool {
	if n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode || knownTags[n.ShortTag()] {
		return true
	}
	ds.Add(d.Pos(n), fmt.Sprintf("tag %s is not supported", n.Tag), "remove the tag; runbook files are plain YAML")
	return false
}

// Describe is how a message shows what was found: a list, a mapping, nothing,
// or the scalar itself.
func Describe(n *yaml.Node) string {
	n = Resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!str", "!!timestamp", "!!binary":
		return strconv.Quote(v)
	}
	return v
}

func (d *Decoder) mismatch(n *yaml.Node, want string, ds *diag.Diags) {
	ds.Errorf(d.Pos(n), "%s must be %s, got %s", d.Name(), want, Describe(n))
}

// plain converts n to the plain Go values expressions and JSON understand.
func (d *Decoder) plain(n *yaml.Node, ds *diag.Diags) any {
	if n.Kind == yaml.AliasNode {
		var out any
		d.alias(n, func(t *yaml.Node) { out = d.plain(t, ds) }, ds)
		return out
	}
	if !d.visit(n, ds) || !d.knownTag(n, ds) {
		return nil
	}
	if n.Anchor != "" {
		defer d.enter(n)()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return d.plain(n.Content[0], ds)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			d.within(fmt.Sprintf("[%d]", i), false, func() { out[i] = d.plain(c, ds) })
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		for _, p := range d.Entries(n, ds) {
			k, ok := d.KeyText(p.Key, ds)
			if !ok {
				continue
			}
			d.within(k, true, func() { out[k] = d.plain(p.Value, ds) })
		}
		return out
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.mismatch(n, "true or false", ds)
			return nil
		}
		return b
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		var f float64
		if err := n.Decode(&f); err == nil {
			return f
		}
		d.mismatch(n, "a number", ds)
		return nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			d.mismatch(n, "a number", ds)
			return nil
		}
		return f
	}
	// Strings, and timestamps and binary kept as their text: values stay
	// time-free and JSON-safe.
	return n.Value
}

// KeyText returns a mapping key as a string; keys must be scalars.
func (d *Decoder) KeyText(k *yaml.Node, ds *diag.Diags) (string, bool) {
	r := Resolve(k)
	if r == nil || r.Kind != yaml.ScalarNode {
		ds.Errorf(d.Pos(k), "a key must be a plain name, got %s", Describe(k))
		return "", false
	}
	return r.Value, true
}

// Pair is one key and its value in a mapping, after merge keys are applied.
type Pair struct{ Key, Value *yaml.Node }

// Entries returns the entries of mapping n in document order, with `<<` merge
// keys expanded (explicit keys win over merged ones, and earlier merged
// mappings over later ones, as YAML's merge spec says) and duplicate explicit
// keys reported at their second occurrence.
func (d *Decoder) Entries(n *yaml.Node, ds *diag.Diags) []Pair {
	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if isMergeKey(k) {
			continue
		}
		r := Resolve(k)
		if r == nil || r.Kind != yaml.ScalarNode {
			continue
		}
		if first, dup := explicit[r.Value]; dup {
			ds.Add(d.Pos(k), fmt.Sprintf("duplicate key %q", r.Value), fmt.Sprintf("first set at line %d", first.Line))
			continue
		}
		explicit[r.Value] = k
	}
	seen := map[string]bool{}
	var out []Pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			for _, p := range d.merged(v, ds) {
				name := Resolve(p.Key).Value
				if explicit[name] != nil || seen[name] {
					continue
				}
				seen[name] = true
				out = append(out, p)
			}
			continue
		}
		r := Resolve(k)
		if r != nil && r.Kind == yaml.ScalarNode {
			if explicit[r.Value] != k {
				continue // a duplicate, reported above
			}
			seen[r.Value] = true
		}
		out = append(out, Pair{k, v})
	}
	if len(n.Content)%2 != 0 {
		ds.Errorf(d.Pos(n), "malformed mapping")
	}
	return out
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// merged returns the entries a `<<:` value brings in: a mapping, or a list of
// mappings of which the first wins.
func (d *Decoder) merged(v *yaml.Node, ds *diag.Diags) []Pair {
	var out []Pair
	var from func(m *yaml.Node, top bool)
	from = func(m *yaml.Node, top bool) {
		if m.Kind == yaml.AliasNode {
			d.alias(m, func(t *yaml.Node) { from(t, top) }, ds)
			return
		}
		if !d.visit(m, ds) {
			return
		}
		switch {
		case m.Kind == yaml.MappingNode:
			out = append(out, d.Entries(m, ds)...)
		case m.Kind == yaml.SequenceNode && top:
			for _, c := range m.Content {
				from(c, false)
			}
		default:
			ds.Add(d.Pos(m), fmt.Sprintf("merge key << needs a mapping, got %s", Describe(m)),
				"write <<: *anchor or <<: [*a, *b]")
		}
	}
	from(v, true)
	// Keep the first of each key: among merged mappings, earlier ones win.
	seen := map[string]bool{}
	kept := out[:0]
	for _, p := range out {
		r := Resolve(p.Key)
		if r == nil || r.Kind != yaml.ScalarNode || seen[r.Value] {
			continue
		}
		seen[r.Value] = true
		kept = append(kept, p)
	}
	return kept
}

// Pairs returns the entries of mapping n (merge keys applied, duplicates
// reported), for callers that walk a mapping themselves.
func (d *Decoder) Pairs(n *yaml.Node, ds *diag.Diags) (keys, values []*yaml.Node) {
	for _, p := range d.Entries(n, ds) {
		keys = append(keys, p.Key)
		values = append(values, p.Value)
	}
	return keys, values
}

// field is one settable key of a struct type.
type field struct {
	name     string
	index    []int
	required bool
}

// structInfo is the cached decoding table of a struct type.
type structInfo struct {
	fields    []field
	byName    map[string]int
	inlineMap []int // index of a `,inline` map that takes the unknown keys, or nil
}

var structCache sync.Map // reflect.Type → *structInfo

func structFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, hasTag := f.Tag.Lookup("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || (!f.IsExported() && !(f.Anonymous && strings.Contains(opts, "inline"))) {
				continue
			}
			index := append(append([]int(nil), prefix...), i)
			if strings.Contains(","+opts+",", ",inline,") {
				switch f.Type.Kind() {
				case reflect.Struct:
					walk(f.Type, index)
				case reflect.Map:
					si.inlineMap = index
				}
				continue
			}
			if !hasTag || name == "" {
				name = strings.ToLower(f.Name)
			}
			required := false
			for _, o := range strings.Split(f.Tag.Get("runbook"), ",") {
				if strings.TrimSpace(o) == "required" {
					required = true
				}
			}
			if _, dup := si.byName[name]; dup {
				continue // the outer field wins, as in encoding/json
			}
			si.byName[name] = len(si.fields)
			si.fields = append(si.fields, field{name: name, index: index, required: required})
		}
	}
	walk(t, nil)
	actual, _ := structCache.LoadOrStore(t, si)
	return actual.(*structInfo)
}

// Keys returns the YAML keys a struct type accepts, in declaration order.
func Keys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	si := structFields(t)
	out := make([]string, len(si.fields))
	for i, f := range si.fields {
		out[i] = f.name
	}
	return out
}

func (d *Decoder) structValue(n *yaml.Node, v reflect.Value, ds *diag.Diags) {
	si := structFields(v.Type())
	var ps []Pair
	switch {
	case n.Kind == yaml.MappingNode:
		ps = d.Entries(n, ds)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		// `swap:` with nothing: an empty mapping, so required keys are reported.
	default:
		d.mismatch(n, "a mapping", ds)
		return
	}
	present, meant := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		if r := Resolve(p.Key); r != nil && r.Kind == yaml.ScalarNode {
			present[r.Value] = true
		}
	}
	for _, p := range ps {
		name, ok := d.KeyText(p.Key, ds)
		if !ok {
			continue
		}
		i, known := si.byName[name]
		if !known {
			if si.inlineMap != nil {
				m := v.FieldByIndex(si.inlineMap)
				d.within(name, true, func() { d.mapEntry(m, name, p.Value, ds) })
				continue
			}
			var unused []string
			for _, f := range si.fields {
				if !present[f.name] {
					unused = append(unused, f.name)
				}
			}
			detail := suggestKey(name, unused)
			if s := Suggested(detail); s != "" {
				// The misspelt key stands for this one: reporting it missing
				// as well would be noise.
				meant[s] = true
			}
			ds.Add(d.Pos(p.Key), fmt.Sprintf("unknown key %q %s", name, d.where()), detail)
			continue
		}
		f := si.fields[i]
		if r := Resolve(p.Value); f.required && r != nil && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
			ds.Errorf(d.Pos(p.Key), "missing value for required key %q %s", name, d.where())
			continue
		}
		d.within(name, true, func() { d.value(p.Value, v.FieldByIndex(f.index), ds) })
	}
	for _, f := range si.fields {
		if f.required && !present[f.name] && !meant[f.name] {
			ds.Errorf(d.Pos(n), "missing required key %q %s", f.name, d.where())
		}
	}
}

// suggestKey is the detail of an unknown key message: a close name, or the
// list of valid ones when it is short enough to read.
func suggestKey(got string, unused []string) string {
	if s := diag.Suggest(got, unused); s != "" {
		return s
	}
	if len(unused) == 0 {
		return ""
	}
	sorted := append([]string(nil), unused...)
	sort.Strings(sorted)
	if len(sorted) > 12 {
		return ""
	}
	return "expected one of: " + strings.Join(sorted, ", ")
}

// Suggested returns the name a `did you mean "X"?` detail suggests, or "".
func Suggested(detail string) string {
	q, ok := strings.CutPrefix(detail, "did you mean ")
	if !ok {
		return ""
	}
	name, err := strconv.Unquote(strings.TrimSuffix(q, "?"))
	if err != nil {
		return ""
	}
	return name
}

func (d *Decoder) mapValue(n *yaml.Node, v reflect.Value, ds *diag.Diags) {
	if v.Type().Key().Kind() != reflect.String {
		ds.Errorf(d.Pos(n), "internal error: cannot decode into %s (keys must be strings)", v.Type())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, "a mapping", ds)
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range d.Entries(n, ds) {
		k, ok := d.KeyText(p.Key, ds)
		if !ok {
			continue
		}
		d.within(k, true, func() { d.mapEntry(v, k, p.Value, ds) })
	}
}

// mapEntry decodes one value into a fresh element and stores it under k. Map
// elements are not addressable, hence the copy.
func (d *Decoder) mapEntry(m reflect.Value, k string, n *yaml.Node, ds *diag.Diags) {
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	e := reflect.New(m.Type().Elem()).Elem()
	d.value(n, e, ds)
	m.SetMapIndex(reflect.ValueOf(k).Convert(m.Type().Key()), e)
}

func (d *Decoder) sliceValue(n *yaml.Node, v reflect.Value, ds *diag.Diags) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, "a list", ds)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.within(fmt.Sprintf("[%d]", i), false, func() { d.value(c, s.Index(i), ds) })
	}
	v.Set(s)
}

// scalar converts a scalar node into a string, bool or number.
func (d *Decoder) scalar(n *yaml.Node, v reflect.Value, ds *diag.Diags) {
	k := v.Kind()
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Float32: "a number", reflect.Float64: "a number"}[k]
	if want == "" {
		want = "a whole number"
	}
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, want, ds)
		return
	}
	tag := n.ShortTag()
	switch k {
	case reflect.String:
		// Any scalar reads as its text: `version: 3.7` is the string "3.7".
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.mismatch(n, want, ds)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil {
			d.numberMismatch(n, want, ds)
			return
		}
		if v.OverflowInt(i) {
			ds.Errorf(d.Pos(n), "%s is out of range: %s", d.Name(), n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var i int64
		var u uint64
		switch {
		case tag != "!!int":
			d.numberMismatch(n, want, ds)
			return
		case n.Decode(&i) == nil && i < 0:
			ds.Errorf(d.Pos(n), "%s must not be negative, got %s", d.Name(), n.Value)
			return
		case n.Decode(&u) != nil || v.OverflowUint(u):
			ds.Errorf(d.Pos(n), "%s is out of range: %s", d.Name(), n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.numberMismatch(n, want, ds)
			return
		}
		v.SetFloat(f)
	default:
		ds.Errorf(d.Pos(n), "internal error: cannot decode %s into %s", d.Name(), v.Type())
	}
}

// numberMismatch reports a scalar that is not a number, with a hint when it is
// a number in quotes.
func (d *Decoder) numberMismatch(n *yaml.Node, want string, ds *diag.Diags) {
	detail := ""
	if n.ShortTag() == "!!str" && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
			detail = "write " + n.Value + " without quotes"
		}
	}
	ds.Add(d.Pos(n), fmt.Sprintf("%s must be %s, got %s", d.Name(), want, Describe(n)), detail)
}

// parseBool accepts YAML's true/false, and the yes/no/on/off words of YAML 1.1
// that Ansible users write (`become: yes`) when they are not quoted.
func parseBool(n *yaml.Node) (bool, bool) {
	if n.ShortTag() == "!!bool" {
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
		return false, false
	}
	if n.ShortTag() != "!!str" || n.Style != 0 {
		return false, false
	}
	switch n.Value {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}
