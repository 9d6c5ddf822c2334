package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxExpansion bounds what one host line may expand to: a typo such as
// [1:1000000000] must be an error, not an out-of-memory.
const maxExpansion = 100000

var (
	// As Ansible's parse_address: "[host]:port" (the only way to give a port to
	// an IPv6 address), or a name (with whole [..] ranges in it) then ":port".
	bracketedHostPortRe = regexp.MustCompile(`^\[(.+)\]:([0-9]+)$`)
	hostPortRe          = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
)

// hostEntry is an inventory host entry split into host names and an optional port
// (etcd[1:3].example:2222).
type hostEntry struct {
	names []string
	port  int // 0: none given
}

// parseHostEntry splits an inventory host entry as Ansible does: an optional
// :port suffix, then [a:b] / [a:b:step] ranges (numeric, keeping leading zeros,
// or alphabetic), expanded left to right.
func parseHostEntry(s string) (hostEntry, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return hostEntry{}, fmt.Errorf("empty host name")
	}
	var e hostEntry
	pattern := s
	if m := bracketedHostPortRe.FindStringSubmatch(s); m != nil && isAddressLike(m[1]) {
		pattern, e.port = m[1], atoiPort(m[2])
	} else if m := hostPortRe.FindStringSubmatch(s); m != nil && m[1] != "" {
		pattern, e.port = m[1], atoiPort(m[2])
	}
	if e.port == 0 && strings.HasSuffix(s, ":") {
		return hostEntry{}, fmt.Errorf("host %q ends in \":\"; give a port after it (host:2222) or remove it", s)
	}
	if e.port < 0 {
		return hostEntry{}, fmt.Errorf("port in %q is out of range; want 1 to 65535", s)
	}
	if pattern == "---" {
		return hostEntry{}, fmt.Errorf("host \"---\" is a YAML document marker: give the file a .yml or .yaml extension")
	}
	if !strings.Contains(pattern, "[") {
		e.names = []string{pattern}
		return e, nil
	}
	names, err := expandRanges(pattern, nil)
	if err != nil {
		return hostEntry{}, fmt.Errorf("host %q: %w", s, err)
	}
	e.names = names
	return e, nil
}

// isAddressLike is true for what may stand inside [..]:port: an IPv6 address
// (two colons or more) or an IPv4 address or name (none). One colon is a host
// range, as in "[1:3]:22".
func isAddressLike(s string) bool { return strings.Count(s, ":") != 1 }

func atoiPort(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return -1
	}
	return n
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandRanges expands the first [..] of line, then, recursively, the rest.
func expandRanges(line string, out []string) ([]string, error) {
	open := strings.IndexByte(line, '[')
	if open < 0 {
		return append(out, line), nil
	}
	closeRel := strings.IndexByte(line[open:], ']')
	if closeRel < 0 {
		return nil, fmt.Errorf("range %q has no closing \"]\"", line[open:])
	}
	head, spec, tail := line[:open], line[open+1:open+closeRel], line[open+closeRel+1:]
	seq, err := rangeSeq(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid range [%s]: %w", spec, err)
	}
	if len(out)+len(seq) > maxExpansion {
		return nil, fmt.Errorf("ranges expand to more than %d hosts", maxExpansion)
	}
	for _, s := range seq {
		var err error
		out, err = expandRanges(head+s+tail, out)
		if err != nil {
			return nil, err
		}
		if len(out) > maxExpansion {
			return nil, fmt.Errorf("ranges expand to more than %d hosts", maxExpansion)
		}
	}
	return out, nil
}

// rangeSeq expands "begin:end" or "begin:end:step". An empty begin is 0; a begin
// with a leading zero sets the width (and end must have the same width); single
// letters make an alphabetic range over a-z then A-Z, as Ansible's.
func rangeSeq(spec string) ([]string, error) {
	bounds := strings.Split(spec, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("want begin:end or begin:end:step")
	}
	beg, end := bounds[0], bounds[1]
	step := 1
	if len(bounds) == 3 {
		n, err := strconv.Atoi(bounds[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("step %q is not a positive integer", bounds[2])
		}
		step = n
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("no end value")
	}
	if len(beg) == 1 && len(end) == 1 && isLetter(beg[0]) && isLetter(end[0]) {
		ib, ie := strings.IndexByte(asciiLetters, beg[0]), strings.IndexByte(asciiLetters, end[0])
		if ib > ie {
			return nil, fmt.Errorf("begin %q comes after end %q", beg, end)
		}
		var seq []string
		for i := ib; i <= ie; i += step {
			seq = append(seq, asciiLetters[i:i+1])
		}
		return seq, nil
	}
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		width = len(beg)
		if len(end) != width {
			return nil, fmt.Errorf("begin %q has leading zeros, so end must have as many digits (%d)", beg, width)
		}
	}
	b, err1 := parseRangeInt(beg)
	e, err2 := parseRangeInt(end)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("want numbers (such as 1:3, 01:10) or single letters (a:f)")
	}
	if b > e {
		return nil, fmt.Errorf("begin %d is greater than end %d", b, e)
	}
	if (e-b)/step+1 > maxExpansion {
		return nil, fmt.Errorf("range has more than %d values", maxExpansion)
	}
	var seq []string
	for i := b; i <= e; i += step {
		seq = append(seq, fmt.Sprintf("%0*d", width, i))
	}
	return seq, nil
}

func parseRangeInt(s string) (int, error) {
	if s == "" || len(s) > 15 {
		return 0, fmt.Errorf("bad number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad number")
		}
	}
	return strconv.Atoi(s)
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
