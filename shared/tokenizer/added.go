package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// addedMatcher finds added tokens in text, leftmost-longest first as
// tokenizers' AddedVocabulary does.
type addedMatcher struct {
	byFirst map[byte][]addedToken // longest first
}

func newAddedMatcher(toks []addedToken) *addedMatcher {
	m := &addedMatcher{byFirst: map[byte][]addedToken{}}
	for _, t := range toks {
		if t.Content == "" {
			continue
		}
		m.byFirst[t.Content[0]] = append(m.byFirst[t.Content[0]], t)
	}
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].Content) > len(list[j].Content) })
	}
	return m
}

// segment is a part of the input: an added token (id >= 0) or text to be
// tokenized (id < 0) starting at byte start.
type segment struct {
	text  string
	id    int
	start int
}

// split cuts s into text and added-token segments; empty text segments are
// dropped.
func (m *addedMatcher) split(s string) []segment {
	if len(m.byFirst) == 0 {
		if s == "" {
			return nil
		}
		return []segment{{text: s, id: -1}}
	}
	var out []segment
	prev := 0 // end of the last emitted segment
	for i := 0; i < len(s); {
		list := m.byFirst[s[i]]
		var tok *addedToken
		for k := range list {
			if strings.HasPrefix(s[i:], list[k].Content) {
				tok = &list[k]
				break
			}
		}
		if tok == nil {
			i++
			continue
		}
		start, end := i, i+len(tok.Content)
		i = end
		if tok.SingleWord && (endsWithWordChar(s[:start]) || startsWithWordChar(s[end:])) {
			continue
		}
		if tok.LStrip {
			for start > prev {
				r, size := utf8.DecodeLastRuneInString(s[:start])
				if !unicode.IsSpace(r) {
					break
				}
				start -= size
			}
		}
		if tok.RStrip {
			for end < len(s) {
				r, size := utf8.DecodeRuneInString(s[end:])
				if !unicode.IsSpace(r) {
					break
				}
				end += size
			}
			i = end
		}
		if start > prev {
			out = append(out, segment{text: s[prev:start], id: -1, start: prev})
		}
		out = append(out, segment{text: s[start:end], id: tok.ID, start: start})
		prev = end
	}
	if prev < len(s) {
		out = append(out, segment{text: s[prev:], id: -1, start: prev})
	}
	return out
}

func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_'
}

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}
