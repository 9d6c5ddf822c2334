package inventory

import (
	"errors"
	"strings"
)

// shToken is a word of a line split as by Python's shlex.split(line,
// comments=True): its text with quotes and escapes resolved, and where its raw
// form starts and ends in the line (byte offsets), for column numbers.
type shToken struct {
	text       string
	start, end int
}

// shlexSplit splits an INI host line as Ansible does (POSIX shlex with comments):
// whitespace separates words; '...' keeps everything; "..." keeps everything but
// \" and \\; a backslash outside quotes escapes the next character; a # outside
// quotes, even inside a word, starts a comment.
func shlexSplit(line string) ([]shToken, error) {
	var (
		toks    []shToken
		b       strings.Builder
		inTok   bool // a quote opens a token too, so '' is an empty word
		start   int
		quote   byte
		i       int
		emitTok = func(end int) {
			if inTok {
				toks = append(toks, shToken{text: b.String(), start: start, end: end})
			}
			b.Reset()
			inTok = false
		}
	)
	for i = 0; i < len(line); i++ {
		c := line[i]
		if quote != 0 {
			switch {
			case c == quote:
				quote = 0
			case quote == '"' && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
				i++
				b.WriteByte(line[i])
			default:
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			emitTok(i)
		case '#':
			emitTok(i)
			return toks, nil
		case '\'', '"':
			if !inTok {
				inTok, start = true, i
			}
			quote = c
		case '\\':
			if i+1 >= len(line) {
				return nil, errors.New("no character after the final backslash")
			}
			if !inTok {
				inTok, start = true, i
			}
			i++
			b.WriteByte(line[i])
		default:
			if !inTok {
				inTok, start = true, i
			}
			b.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, errors.New("no closing quotation")
	}
	emitTok(len(line))
	return toks, nil
}
