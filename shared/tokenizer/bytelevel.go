package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// gpt2Pattern is the GPT-2 pre-tokenization regular expression used by the
// ByteLevel pre-tokenizer when use_regex is true.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// byteToChar maps each byte to the printable rune GPT-2's byte-level BPE uses
// for it (bytes_to_unicode); charToByte is its inverse.
var (
	byteToChar [256]rune
	byteToStr  [256]string
	charToByte = make(map[rune]byte, 256)
)

func init() {
	n := 0
	for b := range 256 {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = rune(256 + n)
			n++
		}
		byteToChar[b] = r
		byteToStr[b] = string(r)
		charToByte[r] = byte(b)
	}
}

// byteLevelString maps every byte of s to its byte-level rune.
func byteLevelString(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		sb.WriteString(byteToStr[s[i]])
	}
	return sb.String()
}

// byteLevelDecode turns byte-level tokens back into text like tokenizers'
// ByteLevel decoder: a token containing a rune outside the byte alphabet
// contributes its own UTF-8 bytes, and invalid UTF-8 in the result is
// replaced by U+FFFD per maximal invalid subsequence (Rust's
// String::from_utf8_lossy).
func byteLevelDecode(tokens []string) string {
	var buf []byte
	for _, tok := range tokens {
		start := len(buf)
		ok := true
		for _, r := range tok {
			b, found := charToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], tok...)
		}
	}
	return lossyUTF8(buf)
}

// lossyUTF8 converts b to a string, replacing each maximal invalid
// subsequence by U+FFFD as Rust's String::from_utf8_lossy does.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[:size])
			b = b[size:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[invalidPrefixLen(b):]
	}
	return sb.String()
}

// invalidPrefixLen returns the length of the maximal prefix of b that starts
// a valid UTF-8 sequence but does not complete it (at least 1).
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for i := 1; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}

// splitRegex is a pre-tokenization regular expression. tokenizers compiles
// these with Oniguruma, whose \s is Unicode-aware and which supports the
// lookahead idiom `\s+(?!\S)|\s+` ending the GPT-2, Llama 3 and Qwen patterns.
// Go's RE2 has neither, so \s is rewritten to the Unicode White_Space set and
// a trailing lookahead idiom is removed and emulated in find.
type splitRegex struct {
	re     *regexp.Regexp
	wsTail bool
}

const wsLookaheadTail = `|\s+(?!\S)|\s+`

func compileSplitRegex(pattern string) (*splitRegex, error) {
	r := &splitRegex{}
	if strings.HasSuffix(pattern, wsLookaheadTail) {
		pattern = strings.TrimSuffix(pattern, wsLookaheadTail)
		r.wsTail = true
	}
	re, err := regexp.Compile(unicodeWhitespace(pattern))
	if err != nil {
		return nil, err
	}
	r.re = re
	return r, nil
}

// unicodeWhitespace rewrites \s and \S (outside character classes) and \s
// (inside them) to Unicode White_Space, which is exactly unicode.IsSpace.
func unicodeWhitespace(p string) string {
	const ws = `\t\n\v\f\r\x{85}\p{Z}`
	var sb strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			switch next := p[i+1]; {
			case next == 's' && inClass:
				sb.WriteString(ws)
			case next == 's':
				sb.WriteString("[" + ws + "]")
			case next == 'S' && !inClass:
				sb.WriteString("[^" + ws + "]")
			default:
				sb.WriteByte(c)
				sb.WriteByte(next)
			}
			i++
		case c == '[' && !inClass:
			inClass = true
			sb.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				sb.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				sb.WriteByte(']')
				i++
			}
		case c == '[' && inClass && i+1 < len(p) && p[i+1] == ':':
			end := strings.Index(p[i:], ":]")
			if end < 0 {
				sb.WriteByte(c)
				continue
			}
			sb.WriteString(p[i : i+end+2])
			i += end + 1
		case c == ']' && inClass:
			inClass = false
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// find returns the [start, end) byte ranges of the matches in s, in order.
func (r *splitRegex) find(s string) [][2]int {
	locs := r.re.FindAllStringIndex(s, -1)
	if !r.wsTail {
		out := make([][2]int, len(locs))
		for i, l := range locs {
			out[i] = [2]int{l[0], l[1]}
		}
		return out
	}
	out := make([][2]int, 0, len(locs)+4)
	prev := 0
	for _, l := range locs {
		out = appendWhitespaceMatches(out, s, prev, l[0])
		out = append(out, [2]int{l[0], l[1]})
		prev = l[1]
	}
	return appendWhitespaceMatches(out, s, prev, len(s))
}

// appendWhitespaceMatches emulates `\s+(?!\S)|\s+` on the gap s[from:to]
// left between two matches of the rest of the pattern. A whitespace run that
// is followed by a non-space character gives up its last character, which
// becomes a match of its own; a run at the end of s or followed by a match
// starting with whitespace is one match. Non-space characters in the gap
// stay unmatched.
func appendWhitespaceMatches(out [][2]int, s string, from, to int) [][2]int {
	i := from
	for i < to {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			i += size
			continue
		}
		start := i
		lastStart := i
		for i < to {
			r, size = utf8.DecodeRuneInString(s[i:])
			if !unicode.IsSpace(r) {
				break
			}
			lastStart = i
			i += size
		}
		followedByNonSpace := false
		if i < len(s) {
			next, _ := utf8.DecodeRuneInString(s[i:])
			followedByNonSpace = !unicode.IsSpace(next)
		}
		if followedByNonSpace && lastStart > start {
			out = append(out, [2]int{start, lastStart}, [2]int{lastStart, i})
		} else {
			out = append(out, [2]int{start, i})
		}
	}
	return out
}
