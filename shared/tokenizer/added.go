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
	byFirst map[byte][]addedPattern // longest first
}

// addedPattern is an added token and the string it matches: its content,
// or for a normalized token its content normalized (tokenizers'
// refresh_added_tokens: with Llama-2's Prepend("▁") normalizer the
// normalized token "</s>" matches "▁</s>").
type addedPattern struct {
	addedToken
	match string
}

// newAddedMatcher matches toks; normalize (nil: none) maps each content to
// the string it matches.
func newAddedMatcher(toks []addedToken, normalize normalizerFn) *addedMatcher {
	m := &addedMatcher{byFirst: map[byte][]addedPattern{}}
	for _, t := range toks {
		pat := addedPattern{addedToken: t, match: t.Content}
		if normalize != nil {
			pat.match = normalize(t.Content)
		}
		if pat.match == "" {
			continue
		}
		m.byFirst[pat.match[0]] = append(m.byFirst[pat.match[0]], pat)
	}
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].match) > len(list[j].match) })
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
		var tok *addedPattern
		for k := range list {
			if strings.HasPrefix(s[i:], list[k].match) {
				tok = &list[k]
				break
			}
		}
		if tok == nil {
			i++
			continue
		}
		start, end := i, i+len(tok.match)
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
			// The search goes on from the token's own end, as tokenizers'
			// find_matches does: an added token among the stripped spaces
			// (Gemma's "\n") is still found.
			for end < len(s) {
				r, size := utf8.DecodeRuneInString(s[end:])
				if !unicode.IsSpace(r) {
					break
				}
				end += size
			}
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

// isWordChar is Rust regex's Unicode \w, which single_word tests: Alphabetic,
// marks, decimal digits, connector punctuation and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.In(r, unicode.Nl, unicode.M, unicode.Nd, unicode.Pc, unicode.Other_Alphabetic) || r == 0x200C || r == 0x200D
}

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}
