package tokenizer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/unicode/norm"
)

// This file implements the tokenizers pipeline natively for the components
// listed in the package documentation; buildPipeline returns an
// *unsupportedError for anything else.

type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string { return "unsupported " + e.what }

func unsupported(format string, args ...any) error {
	return &unsupportedError{what: fmt.Sprintf(format, args...)}
}

// obj is one decoded JSON object of tokenizer.json.
type obj = map[string]any

func str(o obj, key string) (string, bool) {
	s, ok := o[key].(string)
	return s, ok
}

func boolean(o obj, key string, def bool) bool {
	if b, ok := o[key].(bool); ok {
		return b
	}
	return def
}

func typeOf(o obj) string {
	t, _ := o["type"].(string)
	return t
}

// piece is a part of the input still to be tokenized; atStart reports that
// it begins at offset 0 of the original input (Metaspace's "first" scheme).
type piece struct {
	text    string
	atStart bool
}

type normalizerFn func(string) string

type preTokenizer func([]piece) []piece

// decodeStep is one decoder of tokenizers' decode_chain.
type decodeStep func([]string) []string

// pipeline is a loaded tokenizer.json: the added tokens are split off first,
// the rest is normalized, pre-tokenized and run through the model (BPE,
// WordPiece, WordLevel or Unigram).
type pipeline struct {
	rawAdded  *addedMatcher // added tokens matched on the raw input
	normAdded *addedMatcher // added tokens matched after normalization
	normalize normalizerFn  // nil when absent
	pre       preTokenizer  // nil when absent
	model     model
	decoders  []decodeStep // nil: tokens are joined with spaces
	prefix    []int        // post-processor ids before the text
	suffix    []int        // post-processor ids after it
	pair      []tmplPart   // post-processor template of a pair of sequences
	pairErr   error        // why pair is unusable, reported by EncodePair
	mayFail   bool         // the model gives -1 for text it cannot encode (Unigram without unk_id)
}

// encode appends the ids of text, without the post-processor's, to ids.
func (p *pipeline) encode(text string, ids []int) []int {
	for _, seg := range p.rawAdded.split(text) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		s := seg.text
		if p.normalize != nil {
			s = p.normalize(s)
		}
		for j, sub := range p.normAdded.split(s) {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				continue
			}
			pieces := []piece{{text: sub.text, atStart: seg.start == 0 && j == 0}}
			if p.pre != nil {
				pieces = p.pre(pieces)
			}
			for _, pc := range pieces {
				ids = p.model.tokenize(pc.text, ids)
			}
		}
	}
	return ids
}

func (p *pipeline) decode(tokens []string) string {
	if p.decoders == nil {
		return strings.Join(tokens, " ")
	}
	for _, d := range p.decoders {
		tokens = d(tokens)
	}
	return strings.Join(tokens, "")
}

// buildPipeline builds the native pipeline of a parsed tokenizer.json.
func buildPipeline(f *fileJSON, added []addedToken) (*pipeline, error) {
	model, ok := f.Model.(obj)
	if !ok {
		return nil, fmt.Errorf("model is not an object")
	}
	p := &pipeline{}
	var err error
	switch t := typeOf(model); {
	case t == "BPE" || t == "" && model["merges"] != nil:
		if p.model, err = buildBPE(model); err != nil {
			return nil, err
		}
	case t == "WordPiece" || t == "" && model["continuing_subword_prefix"] != nil:
		vocab, verr := modelVocab(model)
		if verr != nil {
			return nil, verr
		}
		if p.model, err = buildWordPiece(model, vocab); err != nil {
			return nil, err
		}
	case t == "WordLevel":
		vocab, verr := modelVocab(model)
		if verr != nil {
			return nil, verr
		}
		if p.model, err = buildWordLevel(model, vocab); err != nil {
			return nil, err
		}
	case t == "Unigram" || t == "" && model["unk_id"] != nil:
		u, uerr := buildUnigram(model)
		if uerr != nil {
			return nil, uerr
		}
		p.model, p.mayFail = u, u.unk < 0
	default:
		return nil, unsupported("model type %q", t)
	}
	if f.Normalizer != nil {
		if p.normalize, err = buildNormalizer(f.Normalizer); err != nil {
			return nil, err
		}
	}
	// tokenizers' AddedVocabulary: tokens with normalized false are matched
	// on the raw text, the others on the normalized remaining pieces, as
	// their content normalized.
	var raw, normed []addedToken
	for _, t := range added {
		if t.Normalized {
			normed = append(normed, t)
		} else {
			raw = append(raw, t)
		}
	}
	p.rawAdded, p.normAdded = newAddedMatcher(raw, nil), newAddedMatcher(normed, p.normalize)
	if f.PreTokenizer != nil {
		if p.pre, err = buildPreTokenizer(f.PreTokenizer); err != nil {
			return nil, err
		}
	}
	if f.PostProcessor != nil {
		if p.prefix, p.suffix, err = buildPostProcessor(f.PostProcessor); err != nil {
			return nil, err
		}
		p.pair, p.pairErr = buildPairTemplate(f.PostProcessor)
	} else {
		p.pair = defaultPair
	}
	if f.Decoder != nil {
		d, err := buildDecoder(f.Decoder)
		if err != nil {
			return nil, err
		}
		p.decoders = []decodeStep{d}
	}
	return p, nil
}

func buildBPE(o obj) (*bpeModel, error) {
	vocabObj, ok := o["vocab"].(obj)
	if !ok {
		return nil, fmt.Errorf("model.vocab is not an object")
	}
	vocab := make(map[string]int, len(vocabObj))
	for tok, v := range vocabObj {
		f, ok := v.(float64)
		if !ok || f < 0 || f != float64(int(f)) {
			return nil, fmt.Errorf("model.vocab[%q] is not a token id", tok)
		}
		vocab[tok] = int(f)
	}
	mergeList, _ := o["merges"].([]any)
	merges := make([][2]string, len(mergeList))
	for i, m := range mergeList {
		switch m := m.(type) {
		case string:
			a, b, ok := strings.Cut(m, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("model.merges[%d] %q is not two space-separated tokens", i, m)
			}
			merges[i] = [2]string{a, b}
		case []any:
			if len(m) != 2 {
				return nil, fmt.Errorf("model.merges[%d] does not have two parts", i)
			}
			a, ok1 := m[0].(string)
			b, ok2 := m[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("model.merges[%d] parts are not strings", i)
			}
			merges[i] = [2]string{a, b}
		default:
			return nil, fmt.Errorf("model.merges[%d] is neither a string nor a pair", i)
		}
	}
	var opts bpeOptions
	opts.unk, _ = str(o, "unk_token")
	opts.prefix, _ = str(o, "continuing_subword_prefix")
	opts.suffix, _ = str(o, "end_of_word_suffix")
	opts.fuseUnk = boolean(o, "fuse_unk", false)
	opts.byteFallback = boolean(o, "byte_fallback", false)
	opts.ignoreMerges = boolean(o, "ignore_merges", false)
	if d, ok := o["dropout"].(float64); ok && d > 0 {
		if d > 1 {
			return nil, fmt.Errorf("model.dropout %v is not in [0, 1]", d)
		}
		opts.dropout = float32(d)
	}
	m, err := newBPEModel(vocab, merges, opts)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return m, nil
}

// pattern is a Split/Replace pattern: {"String": s} or {"Regex": r}.
type pattern struct {
	literal string
	re      *splitRegex
}

func parsePattern(o obj, where string) (*pattern, error) {
	p, ok := o["pattern"].(obj)
	if !ok {
		return nil, fmt.Errorf("%s: pattern is not an object", where)
	}
	if s, ok := str(p, "String"); ok {
		return &pattern{literal: s}, nil
	}
	if s, ok := str(p, "Regex"); ok {
		re, err := compileSplitRegex(s)
		if err != nil {
			return nil, unsupported("%s regex %q (Go regexp: %v)", where, s, err)
		}
		return &pattern{re: re}, nil
	}
	return nil, fmt.Errorf("%s: pattern has neither String nor Regex", where)
}

// find returns the [start, end) ranges of the non-overlapping matches.
func (p *pattern) find(s string) [][2]int {
	if p.re != nil {
		return p.re.find(s)
	}
	if p.literal == "" {
		return nil
	}
	var out [][2]int
	for off := 0; ; {
		i := strings.Index(s[off:], p.literal)
		if i < 0 {
			return out
		}
		out = append(out, [2]int{off + i, off + i + len(p.literal)})
		off += i + len(p.literal)
	}
}

func (p *pattern) replaceAll(s, content string) string {
	if p.re == nil {
		if p.literal == "" {
			return s
		}
		return strings.ReplaceAll(s, p.literal, content)
	}
	var sb strings.Builder
	prev := 0
	for _, m := range p.re.find(s) {
		sb.WriteString(s[prev:m[0]])
		sb.WriteString(content)
		prev = m[1]
	}
	sb.WriteString(s[prev:])
	return sb.String()
}

func buildNormalizer(o obj) (normalizerFn, error) {
	switch t := typeOf(o); t {
	case "Sequence":
		list, _ := o["normalizers"].([]any)
		var fns []normalizerFn
		for i, x := range list {
			sub, ok := x.(obj)
			if !ok {
				return nil, fmt.Errorf("normalizer.normalizers[%d] is not an object", i)
			}
			fn, err := buildNormalizer(sub)
			if err != nil {
				return nil, err
			}
			fns = append(fns, fn)
		}
		return func(s string) string {
			for _, fn := range fns {
				s = fn(s)
			}
			return s
		}, nil
	case "Prepend":
		pre, _ := str(o, "prepend")
		return func(s string) string {
			if s == "" {
				return s
			}
			return pre + s
		}, nil
	case "Replace":
		p, err := parsePattern(o, "Replace normalizer")
		if err != nil {
			return nil, err
		}
		content, _ := str(o, "content")
		return func(s string) string { return p.replaceAll(s, content) }, nil
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return rustLower, nil
	case "BertNormalizer":
		return buildBertNormalizer(o)
	case "Nmt":
		return nmtNormalize, nil
	case "Strip":
		left, right := boolean(o, "strip_left", false), boolean(o, "strip_right", false)
		return func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}, nil
	case "StripAccents":
		// is_combining_mark: every mark (Mn, Mc, Me), unlike BertNormalizer's Mn
		return func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.Is(unicode.M, r) {
					return -1
				}
				return r
			}, s)
		}, nil
	case "Precompiled":
		v := o["precompiled_charsmap"]
		if v == nil {
			return func(s string) string { return s }, nil // an empty charsmap does nothing
		}
		m, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap is not a base64 string")
		}
		if m == "" {
			return func(s string) string { return s }, nil
		}
		pc, err := parsePrecompiled(m)
		if err != nil {
			return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap: %w", err)
		}
		return pc.normalize, nil
	default:
		return nil, unsupported("normalizer %q", t)
	}
}

// splitBehavior applies a tokenizers SplitDelimiterBehavior to the matches
// of s and returns the non-empty parts.
func splitBehavior(s string, matches [][2]int, behavior string, invert bool) ([]string, error) {
	type part struct {
		start, end int
		match      bool
	}
	parts := make([]part, 0, 2*len(matches)+1)
	prev := 0
	for _, m := range matches {
		if m[0] > prev {
			parts = append(parts, part{prev, m[0], invert})
		}
		parts = append(parts, part{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev < len(s) {
		parts = append(parts, part{prev, len(s), invert})
	}
	var out []part
	switch behavior {
	case "Isolated":
		out = parts
	case "Removed":
		for _, p := range parts {
			if !p.match {
				out = append(out, p)
			}
		}
	case "Contiguous":
		prevMatch := false
		for i, p := range parts {
			if i > 0 && p.match == prevMatch {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p)
			}
			prevMatch = p.match
		}
	case "MergedWithPrevious":
		prevMatch := false
		for _, p := range parts {
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, p)
			}
			prevMatch = p.match
		}
	case "MergedWithNext":
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			p := parts[i]
			if p.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = p.start
			} else {
				out = append(out, p)
			}
			prevMatch = p.match
		}
		slices.Reverse(out)
	default:
		return nil, fmt.Errorf("unknown split behavior %q", behavior)
	}
	res := make([]string, 0, len(out))
	for _, p := range out {
		if p.end > p.start {
			res = append(res, s[p.start:p.end])
		}
	}
	return res, nil
}

// splitPieces splits every piece with fn; only the first part of a piece
// keeps its atStart flag.
func splitPieces(ps []piece, fn func(string) []string) []piece {
	out := make([]piece, 0, len(ps)*4)
	for _, p := range ps {
		for i, s := range fn(p.text) {
			out = append(out, piece{text: s, atStart: p.atStart && i == 0 && startsAt0(p.text, s)})
		}
	}
	return out
}

// startsAt0 reports whether part, a substring that fn returned for s,
// begins at s's first byte (Metaspace's "first" scheme looks at the
// offset in the original input).
func startsAt0(s, part string) bool {
	return len(s) == 0 || len(part) == 0 || unsafe.StringData(s) == unsafe.StringData(part)
}

var validBehaviors = []string{"Isolated", "Removed", "Contiguous", "MergedWithPrevious", "MergedWithNext"}

func buildPreTokenizer(o obj) (preTokenizer, error) {
	switch t := typeOf(o); t {
	case "Sequence":
		list, _ := o["pretokenizers"].([]any)
		var steps []preTokenizer
		for i, x := range list {
			sub, ok := x.(obj)
			if !ok {
				return nil, fmt.Errorf("pre_tokenizer.pretokenizers[%d] is not an object", i)
			}
			step, err := buildPreTokenizer(sub)
			if err != nil {
				return nil, err
			}
			steps = append(steps, step)
		}
		return func(ps []piece) []piece {
			for _, step := range steps {
				ps = step(ps)
			}
			return ps
		}, nil
	case "ByteLevel":
		addPrefix := boolean(o, "add_prefix_space", false)
		var re *splitRegex
		if boolean(o, "use_regex", true) {
			var err error
			if re, err = compileSplitRegex(gpt2Pattern); err != nil {
				return nil, err
			}
		}
		return func(ps []piece) []piece {
			out := make([]piece, 0, len(ps)*4)
			for _, p := range ps {
				s := p.text
				if addPrefix && !strings.HasPrefix(s, " ") {
					s = " " + s
				}
				if re == nil {
					out = append(out, piece{text: byteLevelString(s), atStart: p.atStart})
					continue
				}
				parts, _ := splitBehavior(s, re.find(s), "Isolated", false)
				for i, part := range parts {
					out = append(out, piece{text: byteLevelString(part), atStart: p.atStart && i == 0})
				}
			}
			return out
		}, nil
	case "Metaspace":
		repl, _ := str(o, "replacement")
		if repl == "" {
			repl, _ = str(o, "str_rep")
		}
		if utf8.RuneCountInString(repl) != 1 {
			return nil, fmt.Errorf("Metaspace pre_tokenizer: replacement %q is not one character", repl)
		}
		scheme := "always"
		if s, ok := str(o, "prepend_scheme"); ok {
			scheme = strings.ToLower(s)
		} else if !boolean(o, "add_prefix_space", true) {
			scheme = "never"
		}
		if scheme != "always" && scheme != "first" && scheme != "never" {
			return nil, fmt.Errorf("Metaspace pre_tokenizer: unknown prepend_scheme %q", scheme)
		}
		split := boolean(o, "split", true)
		lit := &pattern{literal: repl}
		return func(ps []piece) []piece {
			out := make([]piece, 0, len(ps)*4)
			for _, p := range ps {
				s := strings.ReplaceAll(p.text, " ", repl)
				if !strings.HasPrefix(s, repl) && (scheme == "always" || scheme == "first" && p.atStart) {
					s = repl + s
				}
				if !split {
					out = append(out, piece{text: s, atStart: p.atStart})
					continue
				}
				parts, _ := splitBehavior(s, lit.find(s), "MergedWithNext", false)
				for i, part := range parts {
					out = append(out, piece{text: part, atStart: p.atStart && i == 0})
				}
			}
			return out
		}, nil
	case "Split":
		p, err := parsePattern(o, "Split pre_tokenizer")
		if err != nil {
			return nil, err
		}
		behavior, _ := str(o, "behavior")
		if !slices.Contains(validBehaviors, behavior) {
			return nil, fmt.Errorf("Split pre_tokenizer: unknown behavior %q", behavior)
		}
		invert := boolean(o, "invert", false)
		return func(ps []piece) []piece {
			return splitPieces(ps, func(s string) []string {
				parts, _ := splitBehavior(s, p.find(s), behavior, invert)
				return parts
			})
		}, nil
	case "Digits":
		re := regexp.MustCompile(`\p{N}+`)
		if boolean(o, "individual_digits", false) {
			re = regexp.MustCompile(`\p{N}`)
		}
		return func(ps []piece) []piece {
			return splitPieces(ps, func(s string) []string {
				var matches [][2]int
				for _, l := range re.FindAllStringIndex(s, -1) {
					matches = append(matches, [2]int{l[0], l[1]})
				}
				parts, _ := splitBehavior(s, matches, "Isolated", false)
				return parts
			})
		}, nil
	case "Whitespace":
		// \w+|[^\w\s]+ with Rust's Unicode \w.
		const word = `\p{L}\p{Nd}\p{Nl}\p{M}\p{Pc}\x{200C}\x{200D}`
		re := regexp.MustCompile(`[` + word + `]+|[^` + word + `\t\n\v\f\r\x{85}\p{Z}]+`)
		return func(ps []piece) []piece {
			return splitPieces(ps, func(s string) []string {
				var parts []string
				for _, l := range re.FindAllStringIndex(s, -1) {
					parts = append(parts, s[l[0]:l[1]])
				}
				return parts
			})
		}, nil
	case "WhitespaceSplit":
		return func(ps []piece) []piece {
			return splitPieces(ps, strings.Fields)
		}, nil
	case "BertPreTokenizer":
		return bertPreTokenize, nil
	case "Punctuation":
		behavior := "Isolated"
		if v, ok := o["behavior"]; ok && v != nil {
			behavior, _ = v.(string)
			if !slices.Contains(validBehaviors, behavior) {
				return nil, fmt.Errorf("Punctuation pre_tokenizer: unknown behavior %v", v)
			}
		}
		return func(ps []piece) []piece {
			return splitPieces(ps, func(s string) []string {
				parts, _ := splitBehavior(s, charMatches(s, isPunc), behavior, false)
				return parts
			})
		}, nil
	case "CharDelimiterSplit":
		d, _ := str(o, "delimiter")
		if utf8.RuneCountInString(d) != 1 {
			return nil, fmt.Errorf("CharDelimiterSplit pre_tokenizer: delimiter %q is not one character", d)
		}
		delim, _ := utf8.DecodeRuneInString(d)
		return func(ps []piece) []piece {
			return splitPieces(ps, func(s string) []string {
				parts, _ := splitBehavior(s, charMatches(s, func(r rune) bool { return r == delim }), "Removed", false)
				return parts
			})
		}, nil
	default:
		return nil, unsupported("pre_tokenizer %q", t)
	}
}

// buildPostProcessor returns the ids a single sequence is wrapped in when
// special tokens are requested.
func buildPostProcessor(o obj) (prefix, suffix []int, err error) {
	switch t := typeOf(o); t {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		list, _ := o["processors"].([]any)
		for i, x := range list {
			sub, ok := x.(obj)
			if !ok {
				return nil, nil, fmt.Errorf("post_processor.processors[%d] is not an object", i)
			}
			pre, suf, err := buildPostProcessor(sub)
			if err != nil {
				return nil, nil, err
			}
			prefix = append(pre, prefix...)
			suffix = append(suffix, suf...)
		}
		return prefix, suffix, nil
	case "RobertaProcessing", "BertProcessing":
		cls, err := postToken(o, "cls")
		if err != nil {
			return nil, nil, err
		}
		sep, err := postToken(o, "sep")
		if err != nil {
			return nil, nil, err
		}
		return []int{cls}, []int{sep}, nil
	case "TemplateProcessing":
		specials := map[string][]int{}
		st, _ := o["special_tokens"].(obj)
		for name, v := range st {
			vo, _ := v.(obj)
			ids, _ := vo["ids"].([]any)
			for _, id := range ids {
				f, ok := id.(float64)
				if !ok {
					return nil, nil, fmt.Errorf("post_processor.special_tokens[%q].ids is not a list of ids", name)
				}
				specials[name] = append(specials[name], int(f))
			}
		}
		single, _ := o["single"].([]any)
		seenSeq := false
		for i, x := range single {
			item, _ := x.(obj)
			if _, ok := item["Sequence"]; ok {
				if seenSeq {
					return nil, nil, unsupported("TemplateProcessing with two sequences in single")
				}
				seenSeq = true
				continue
			}
			sp, ok := item["SpecialToken"].(obj)
			if !ok {
				return nil, nil, fmt.Errorf("post_processor.single[%d] is neither Sequence nor SpecialToken", i)
			}
			name, _ := str(sp, "id")
			ids, ok := specials[name]
			if !ok {
				return nil, nil, fmt.Errorf("post_processor.single[%d]: special token %q is not in special_tokens", i, name)
			}
			if seenSeq {
				suffix = append(suffix, ids...)
			} else {
				prefix = append(prefix, ids...)
			}
		}
		if !seenSeq {
			return nil, nil, fmt.Errorf("post_processor.single has no Sequence")
		}
		return prefix, suffix, nil
	default:
		return nil, nil, unsupported("post_processor %q", t)
	}
}

func postToken(o obj, key string) (int, error) {
	v, _ := o[key].([]any)
	if len(v) != 2 {
		return 0, fmt.Errorf("post_processor.%s is not a [token, id] pair", key)
	}
	id, ok := v[1].(float64)
	if !ok {
		return 0, fmt.Errorf("post_processor.%s id is not a number", key)
	}
	return int(id), nil
}

func buildDecoder(o obj) (decodeStep, error) {
	switch t := typeOf(o); t {
	case "Sequence":
		list, _ := o["decoders"].([]any)
		var steps []decodeStep
		for i, x := range list {
			sub, ok := x.(obj)
			if !ok {
				return nil, fmt.Errorf("decoder.decoders[%d] is not an object", i)
			}
			step, err := buildDecoder(sub)
			if err != nil {
				return nil, err
			}
			steps = append(steps, step)
		}
		return func(toks []string) []string {
			for _, s := range steps {
				toks = s(toks)
			}
			return toks
		}, nil
	case "ByteLevel":
		return func(toks []string) []string { return []string{byteLevelDecode(toks)} }, nil
	case "Metaspace":
		repl, _ := str(o, "replacement")
		if repl == "" {
			repl, _ = str(o, "str_rep")
		}
		prepend := true
		if s, ok := str(o, "prepend_scheme"); ok {
			prepend = strings.ToLower(s) != "never"
		} else {
			prepend = boolean(o, "add_prefix_space", true)
		}
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				if i == 0 && prepend {
					out[i] = strings.ReplaceAll(tok, repl, "")
				} else {
					out[i] = strings.ReplaceAll(tok, repl, " ")
				}
			}
			return out
		}, nil
	case "Replace":
		p, err := parsePattern(o, "Replace decoder")
		if err != nil {
			return nil, err
		}
		content, _ := str(o, "content")
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				out[i] = p.replaceAll(tok, content)
			}
			return out
		}, nil
	case "ByteFallback":
		return byteFallbackDecode, nil
	case "WordPiece":
		prefix := "##"
		if v, ok := o["prefix"]; ok && v != nil {
			if prefix, ok = v.(string); !ok {
				return nil, fmt.Errorf("WordPiece decoder: prefix is not a string")
			}
		}
		return wordPieceDecoder(prefix, boolean(o, "cleanup", true)), nil
	case "Fuse":
		return func(toks []string) []string { return []string{strings.Join(toks, "")} }, nil
	case "Strip":
		content, _ := str(o, "content")
		if utf8.RuneCountInString(content) != 1 {
			return nil, fmt.Errorf("Strip decoder: content %q is not one character", content)
		}
		start, _ := o["start"].(float64)
		stop, _ := o["stop"].(float64)
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				for n := 0; n < int(start) && strings.HasPrefix(tok, content); n++ {
					tok = tok[len(content):]
				}
				for n := 0; n < int(stop) && strings.HasSuffix(tok, content); n++ {
					tok = tok[:len(tok)-len(content)]
				}
				out[i] = tok
			}
			return out
		}, nil
	case "BPEDecoder":
		suffix, ok := str(o, "suffix")
		if !ok {
			suffix = "</w>"
		}
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, tok := range toks {
				repl := " "
				if i == len(toks)-1 {
					repl = ""
				}
				out[i] = strings.ReplaceAll(tok, suffix, repl)
			}
			return out
		}, nil
	default:
		return nil, unsupported("decoder %q", t)
	}
}

// byteFallbackDecode turns runs of "<0xXX>" tokens into the text they spell,
// or one U+FFFD per byte when the run is not valid UTF-8.
func byteFallbackDecode(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, tok := range toks {
		if b, ok := byteToken(tok); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, tok)
	}
	flush()
	return out
}

// byteToken parses "<0xXX>".
func byteToken(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(tok[3:5]) {
		b <<= 4
		switch {
		case c >= '0' && c <= '9':
			b |= c - '0'
		case c >= 'A' && c <= 'F':
			b |= c - 'A' + 10
		case c >= 'a' && c <= 'f':
			b |= c - 'a' + 10
		default:
			return 0, false
		}
	}
	return b, true
}

// tmplPart is one item of a post-processor's pair template: sequence A (0)
// or B (1), or special token ids (seq -1), with the type id it gets.
type tmplPart struct {
	seq    int
	ids    []int
	typeID int
}

// defaultPair is tokenizers' pair without a post-processor (or with
// ByteLevel's): A with type id 0, then B with type id 1.
var defaultPair = []tmplPart{{seq: 0}, {seq: 1, typeID: 1}}

// buildPairTemplate returns the template a pair of sequences is put in:
// BertProcessing's [CLS] A [SEP] B [SEP] (type ids 0 up to the first [SEP],
// then 1), RobertaProcessing's <s> A </s> </s> B </s> (all 0),
// TemplateProcessing's pair, or the default. In a Sequence the last
// processor that has one decides.
func buildPairTemplate(o obj) ([]tmplPart, error) {
	switch t := typeOf(o); t {
	case "ByteLevel":
		return defaultPair, nil
	case "Sequence":
		list, _ := o["processors"].([]any)
		out := defaultPair
		for i, x := range list {
			sub, ok := x.(obj)
			if !ok {
				return nil, fmt.Errorf("post_processor.processors[%d] is not an object", i)
			}
			if typeOf(sub) == "ByteLevel" {
				continue
			}
			p, err := buildPairTemplate(sub)
			if err != nil {
				return nil, err
			}
			out = p
		}
		return out, nil
	case "BertProcessing", "RobertaProcessing":
		cls, err := postToken(o, "cls")
		if err != nil {
			return nil, err
		}
		sep, err := postToken(o, "sep")
		if err != nil {
			return nil, err
		}
		if t == "BertProcessing" {
			return []tmplPart{{seq: -1, ids: []int{cls}}, {seq: 0}, {seq: -1, ids: []int{sep}},
				{seq: 1, typeID: 1}, {seq: -1, ids: []int{sep}, typeID: 1}}, nil
		}
		return []tmplPart{{seq: -1, ids: []int{cls}}, {seq: 0}, {seq: -1, ids: []int{sep, sep}},
			{seq: 1}, {seq: -1, ids: []int{sep}}}, nil
	case "TemplateProcessing":
		specials := map[string][]int{}
		st, _ := o["special_tokens"].(obj)
		for name, v := range st {
			vo, _ := v.(obj)
			ids, _ := vo["ids"].([]any)
			for _, id := range ids {
				f, ok := id.(float64)
				if !ok {
					return nil, fmt.Errorf("post_processor.special_tokens[%q].ids is not a list of ids", name)
				}
				specials[name] = append(specials[name], int(f))
			}
		}
		list, ok := o["pair"].([]any)
		if !ok {
			return nil, fmt.Errorf("post_processor.pair is not a list")
		}
		var out []tmplPart
		for i, x := range list {
			item, _ := x.(obj)
			typeID := func(v obj) (int, error) {
				f, ok := v["type_id"].(float64)
				if v["type_id"] == nil {
					return 0, nil
				}
				if !ok || f < 0 || f != float64(int(f)) {
					return 0, fmt.Errorf("post_processor.pair[%d].type_id is not a non-negative integer", i)
				}
				return int(f), nil
			}
			if sq, ok := item["Sequence"].(obj); ok {
				id, _ := str(sq, "id")
				if id != "A" && id != "B" {
					return nil, fmt.Errorf("post_processor.pair[%d]: sequence id %q is neither A nor B", i, id)
				}
				ti, err := typeID(sq)
				if err != nil {
					return nil, err
				}
				out = append(out, tmplPart{seq: map[string]int{"A": 0, "B": 1}[id], typeID: ti})
				continue
			}
			sp, ok := item["SpecialToken"].(obj)
			if !ok {
				return nil, fmt.Errorf("post_processor.pair[%d] is neither Sequence nor SpecialToken", i)
			}
			name, _ := str(sp, "id")
			ids, ok := specials[name]
			if !ok {
				return nil, fmt.Errorf("post_processor.pair[%d]: special token %q is not in special_tokens", i, name)
			}
			ti, err := typeID(sp)
			if err != nil {
				return nil, err
			}
			out = append(out, tmplPart{seq: -1, ids: ids, typeID: ti})
		}
		return out, nil
	default:
		return nil, unsupported("post_processor %q", t)
	}
}
