package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file holds BERT's components as Hugging Face tokenizers runs them:
// the WordPiece and WordLevel models, BertNormalizer, BertPreTokenizer,
// Punctuation and the WordPiece decoder (tokenizers/src/models/wordpiece,
// normalizers/bert.rs, pre_tokenizers/bert.rs, decoders/wordpiece.rs).

// model turns one pre-tokenized piece into ids, appended to out.
type model interface {
	tokenize(word string, out []int) []int
}

// wordPieceModel is BERT's greedy longest-match-first WordPiece (Schuster &
// Nakajima 2012; Devlin et al. 2018, arXiv:1810.04805, section 3): a word
// longer than maxChars, or one with a part missing from the vocabulary,
// becomes the single unk token.
type wordPieceModel struct {
	vocab    map[string]int
	prefix   string // continuing_subword_prefix, "##"
	maxChars int    // max_input_chars_per_word, 100
	unk      int
	maxLen   int // longest vocabulary entry in bytes: no longer candidate can match
}

func buildWordPiece(o obj, vocab map[string]int) (*wordPieceModel, error) {
	m := &wordPieceModel{vocab: vocab, prefix: "##", maxChars: 100}
	if v, ok := o["continuing_subword_prefix"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("model.continuing_subword_prefix is not a string")
		}
		m.prefix = s
	}
	if v, ok := o["max_input_chars_per_word"]; ok && v != nil {
		f, ok := v.(float64)
		if !ok || f < 0 || f != float64(int(f)) {
			return nil, fmt.Errorf("model.max_input_chars_per_word %v is not a non-negative integer", v)
		}
		m.maxChars = int(f)
	}
	unk := "[UNK]"
	if v, ok := o["unk_token"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("model.unk_token is not a string")
		}
		unk = s
	}
	id, ok := vocab[unk]
	if !ok {
		return nil, fmt.Errorf("model.unk_token %q is not in model.vocab: WordPiece needs it for unknown words", unk)
	}
	m.unk = id
	for tok := range vocab {
		m.maxLen = max(m.maxLen, len(tok))
	}
	return m, nil
}

func (m *wordPieceModel) tokenize(word string, out []int) []int {
	if word == "" {
		return out
	}
	if utf8.RuneCountInString(word) > m.maxChars {
		return append(out, m.unk)
	}
	n := len(out)
	var buf []byte
	for start := 0; start < len(word); {
		// the longest candidate that could be in the vocabulary, cut back to
		// a character boundary (the same result as starting at the end)
		limit := m.maxLen
		if start > 0 {
			limit -= len(m.prefix)
		}
		end, id := min(len(word), start+max(limit, 1)), -1
		for end < len(word) && !utf8.RuneStart(word[end]) {
			end--
		}
		if end <= start { // a character longer than every entry
			end = start + 1
			for end < len(word) && !utf8.RuneStart(word[end]) {
				end++
			}
		}
		for start < end {
			var v int
			var ok bool
			if start > 0 {
				buf = append(append(buf[:0], m.prefix...), word[start:end]...)
				v, ok = m.vocab[string(buf)] // no allocation for the lookup
			} else {
				v, ok = m.vocab[word[:end]]
			}
			if ok {
				id = v
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if id < 0 {
			return append(out[:n], m.unk)
		}
		out = append(out, id)
		start = end
	}
	return out
}

// wordLevelModel maps each piece to its id, or unk (tokenizers'
// models/wordlevel).
type wordLevelModel struct {
	vocab map[string]int
	unk   int // -1: no unk token, a missing word is an error in HF
}

func buildWordLevel(o obj, vocab map[string]int) (*wordLevelModel, error) {
	m := &wordLevelModel{vocab: vocab, unk: -1}
	unk := "<unk>"
	if v, ok := o["unk_token"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("model.unk_token is not a string")
		}
		unk = s
	}
	id, ok := vocab[unk]
	if !ok {
		return nil, fmt.Errorf("model.unk_token %q is not in model.vocab: WordLevel needs it for unknown words", unk)
	}
	m.unk = id
	return m, nil
}

func (m *wordLevelModel) tokenize(word string, out []int) []int {
	if word == "" {
		return out
	}
	if id, ok := m.vocab[word]; ok {
		return append(out, id)
	}
	return append(out, m.unk)
}

// isBertWhitespace is BertNormalizer's is_whitespace: \t, \n, \r and
// Rust's char::is_whitespace (the White_Space property).
func isBertWhitespace(r rune) bool {
	if r < 0x80 {
		return r == ' ' || r >= '\t' && r <= '\r'
	}
	return unicode.Is(unicode.White_Space, r)
}

// isOther is the unicode_categories crate's is_other as tokenizers sees
// it: Cc, Cf, Co and Cs. Unassigned code points (Cn, which Go's unicode.C
// also holds) are kept, as HF keeps them.
func isOther(r rune) bool {
	if r < 0x80 {
		return r < 0x20 || r == 0x7F
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return isOther(r)
}

// isChineseChar is BertNormalizer's is_chinese_char: the CJK Unified
// Ideographs blocks (not Hangul or kana).
func isChineseChar(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// rustLower is NormalizedString::lowercase: each char's full lowercase
// mapping, without the context-dependent final sigma of str::to_lowercase.
// It differs from strings.ToLower only in İ (U+0130), which Rust maps to
// "i̇" (i + U+0307).
func rustLower(s string) string {
	if !strings.ContainsRune(s, 'İ') {
		return strings.ToLower(s)
	}
	return strings.ToLower(strings.ReplaceAll(s, "İ", "i\u0307"))
}

// stripMarks drops the nonspacing marks (Mn), as BertNormalizer's
// strip_accents does after NFD.
func stripMarks(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}

// buildBertNormalizer is tokenizers' BertNormalizer: clean_text removes
// NUL, U+FFFD and control characters and turns whitespace into spaces;
// handle_chinese_chars puts spaces around CJK ideographs; strip_accents
// (when null it follows lowercase) is NFD then removal of nonspacing marks;
// lowercase lowercases. Each defaults to true.
func buildBertNormalizer(o obj) (normalizerFn, error) {
	flag := func(key string) (bool, error) {
		v, ok := o[key]
		if !ok || v == nil {
			return true, nil
		}
		b, ok := v.(bool)
		if !ok {
			return false, fmt.Errorf("normalizer BertNormalizer: %s is not a boolean", key)
		}
		return b, nil
	}
	clean, err := flag("clean_text")
	if err != nil {
		return nil, err
	}
	chinese, err := flag("handle_chinese_chars")
	if err != nil {
		return nil, err
	}
	lower, err := flag("lowercase")
	if err != nil {
		return nil, err
	}
	strip := lower // strip_accents: None follows lowercase
	if v := o["strip_accents"]; v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("normalizer BertNormalizer: strip_accents is neither a boolean nor null")
		}
		strip = b
	}
	return func(s string) string {
		if clean {
			s = strings.Map(func(r rune) rune {
				switch {
				case r == 0 || r == 0xFFFD || isBertControl(r):
					return -1
				case isBertWhitespace(r):
					return ' '
				}
				return r
			}, s)
		}
		if chinese && strings.IndexFunc(s, isChineseChar) >= 0 {
			var sb strings.Builder
			for _, r := range s {
				if isChineseChar(r) {
					sb.WriteByte(' ')
					sb.WriteRune(r)
					sb.WriteByte(' ')
				} else {
					sb.WriteRune(r)
				}
			}
			s = sb.String()
		}
		if strip {
			s = stripMarks(norm.NFD.String(s))
		}
		if lower {
			s = rustLower(s)
		}
		return s
	}, nil
}

// isPunc is the punctuation of BertPreTokenizer and Punctuation: ASCII
// punctuation (which includes symbols such as $ + < = > ^ ` | ~) and the
// Unicode P categories.
func isPunc(r rune) bool {
	if r < 0x80 {
		return r >= '!' && r <= '/' || r >= ':' && r <= '@' || r >= '[' && r <= '`' || r >= '{' && r <= '~'
	}
	return unicode.IsPunct(r)
}

// charMatches returns each rune of s for which fn holds as one match.
func charMatches(s string, fn func(rune) bool) [][2]int {
	var out [][2]int
	for i, r := range s {
		if fn(r) {
			out = append(out, [2]int{i, i + utf8.RuneLen(r)})
		}
	}
	return out
}

// bertPreTokenize is BertPreTokenizer: split on whitespace (removed), then
// every punctuation character is its own piece.
func bertPreTokenize(ps []piece) []piece {
	ps = splitPieces(ps, func(s string) []string {
		parts, _ := splitBehavior(s, charMatches(s, isBertWhitespace), "Removed", false)
		return parts
	})
	return splitPieces(ps, func(s string) []string {
		parts, _ := splitBehavior(s, charMatches(s, isPunc), "Isolated", false)
		return parts
	})
}

// wordPieceDecoder is tokenizers' WordPiece decoder: a token after the
// first loses its prefix, or gets a space before it; with cleanup the
// spaces before punctuation and in English contractions go.
func wordPieceDecoder(prefix string, cleanup bool) decodeStep {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, tok := range toks {
			if i != 0 {
				if rest, ok := strings.CutPrefix(tok, prefix); ok {
					tok = rest
				} else {
					tok = " " + tok
				}
			}
			if cleanup {
				tok = wordPieceCleanup(tok)
			}
			out[i] = tok
		}
		return out
	}
}

// wordPieceCleanup is decoders/wordpiece.rs's cleanup, which also turns
// " do not" into " don't" (unlike transformers' clean_up_tokenization).
func wordPieceCleanup(s string) string {
	for _, r := range [][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}
