package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// encGoldens is testdata/real/enc_goldens.json.gz, written by
// tools/goldens/enc_tokens.js with Hugging Face's tokenizers (npm package
// "tokenizers"): for each variant of a real tokenizer.json, the ids of
// text with (ids) and without (plain) special tokens, its decoding with
// (dec) and without (decs) skip_special_tokens, and the ids and type ids
// of the pairs: all texts and pairs for the real files, every third for
// the variants.
type encGoldens struct {
	Texts    []string    `json:"texts"`
	Pairs    [][2]string `json:"pairs"`
	Variants []struct {
		Name  string                     `json:"name"`
		Base  string                     `json:"base"`
		Patch map[string]json.RawMessage `json:"patch"`
		Model map[string]json.RawMessage `json:"model"`
		Cases []struct {
			I     int     `json:"i"` // index in Texts
			IDs   []int   `json:"ids"`
			Plain *[]int  `json:"plain"` // only for the real files
			Dec   string  `json:"dec"`
			Decs  *string `json:"decs"` // absent when equal to Dec
		} `json:"cases"`
		PairCases []struct {
			I     int   `json:"i"` // index in Pairs
			IDs   []int `json:"ids"`
			Types []int `json:"types"`
		} `json:"pairs"`
	} `json:"variants"`
}

var loadEncGoldens = sync.OnceValues(func() (*encGoldens, error) {
	data, err := readMaybeGzip(filepath.Join("testdata", "real", "enc_goldens.json.gz"))
	if err != nil {
		return nil, err
	}
	var g encGoldens
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, err
	}
	return &g, nil
})

// readMaybeGzip reads path, gunzipping it when it ends in .gz.
func readMaybeGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	return io.ReadAll(r)
}

// encBase returns the tokenizer.json of a golden variant's base, as a map.
func encBase(t testing.TB, name string) map[string]json.RawMessage {
	t.Helper()
	path := map[string]string{
		"bert":          filepath.Join("testdata", "real", "bert-base-uncased", "tokenizer.json"),
		"pegasus":       filepath.Join("testdata", "real", "pegasus", "tokenizer.json.gz"),
		"unigram-small": filepath.Join("testdata", "real", "unigram-small", "tokenizer.json.gz"),
	}[name]
	data, err := readMaybeGzip(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// applyVariant returns tokenizer.json bytes: base with the variant's
// top-level sections replaced and its model fields set (null removes one),
// as enc_tokens.js builds it.
func applyVariant(t testing.TB, base map[string]json.RawMessage, patch, modelPatch map[string]json.RawMessage) []byte {
	t.Helper()
	m := map[string]json.RawMessage{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range patch {
		m[k] = v
	}
	if modelPatch != nil {
		var model map[string]json.RawMessage
		if err := json.Unmarshal(m["model"], &model); err != nil {
			t.Fatal(err)
		}
		for k, v := range modelPatch {
			if string(v) == "null" {
				delete(model, k)
			} else {
				model[k] = v
			}
		}
		if string(model["type"]) == `"WordLevel"` {
			delete(model, "max_input_chars_per_word")
		}
		b, err := json.Marshal(model)
		if err != nil {
			t.Fatal(err)
		}
		m["model"] = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncoderGoldens checks the WordPiece, WordLevel and Unigram pipelines
// id for id against Hugging Face's tokenizers: the real bert-base-uncased
// and Pegasus tokenizer.json files on 3,486 texts and 450 pairs, and
// variants of them with the other normalizers, pre-tokenizers,
// post-processors, decoders and models on a third of those (among them
// pegasus-deberta-v3: DeBERTa-v3's normalizers, Metaspace and [CLS]/[SEP]
// template over the real Unigram model). Every mismatch fails; the counts are
// logged (go test -v -run TestEncoderGoldens).
func TestEncoderGoldens(t *testing.T) {
	g, err := loadEncGoldens()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Texts) < 3000 || len(g.Variants) < 10 {
		t.Fatalf("goldens have %d texts and %d variants, want >= 3000 and >= 10", len(g.Texts), len(g.Variants))
	}
	var names []string
	for _, v := range g.Variants {
		names = append(names, v.Name)
	}
	for _, want := range []string{"bert-base-uncased", "pegasus", "pegasus-deberta-v3"} {
		if !slices.Contains(names, want) {
			t.Fatalf("goldens lack the variant %s (have %v)", want, names)
		}
	}
	bases := map[string]map[string]json.RawMessage{}
	for _, v := range g.Variants {
		t.Run(v.Name, func(t *testing.T) {
			if bases[v.Base] == nil {
				bases[v.Base] = encBase(t, v.Base)
			}
			tk, err := fromJSON(applyVariant(t, bases[v.Base], v.Patch, v.Model))
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Cases) < len(g.Texts)/3 || len(v.PairCases) < len(g.Pairs)/3 {
				t.Fatalf("%d cases for %d texts, %d pair cases for %d pairs", len(v.Cases), len(g.Texts), len(v.PairCases), len(g.Pairs))
			}
			var idBad, plainBad, decBad, pairBad int
			report := func(bad *int, format string, args ...any) {
				*bad++
				if *bad <= 3 {
					t.Errorf(format, args...)
				}
			}
			for _, c := range v.Cases {
				text := g.Texts[c.I]
				ids, err := tk.Encode(text, true)
				if err != nil {
					report(&idBad, "Encode(%q): %v", text, err)
					continue
				}
				if !slices.Equal(ids, c.IDs) {
					report(&idBad, "Encode(%q, true)\n got %v\nwant %v", text, ids, c.IDs)
				}
				if c.Plain != nil {
					if plain, _ := tk.Encode(text, false); !slices.Equal(plain, *c.Plain) {
						report(&plainBad, "Encode(%q, false)\n got %v\nwant %v", text, plain, *c.Plain)
					}
				}
				wantDecs := c.Dec
				if c.Decs != nil {
					wantDecs = *c.Decs
				}
				dec, err := tk.Decode(c.IDs, true)
				decs, err2 := tk.Decode(c.IDs, false)
				if err != nil || err2 != nil || dec != c.Dec || decs != wantDecs {
					report(&decBad, "Decode(%v) of %q = %q / %q (skip special / not), want %q / %q", c.IDs, text, dec, decs, c.Dec, wantDecs)
				}
			}
			for _, c := range v.PairCases {
				p := g.Pairs[c.I]
				ids, types, err := tk.EncodePair(p[0], p[1], true)
				if err != nil || !slices.Equal(ids, c.IDs) || !slices.Equal(types, c.Types) {
					report(&pairBad, "EncodePair(%q, %q) = %v %v (%v)\nwant %v %v", p[0], p[1], ids, types, err, c.IDs, c.Types)
				}
			}
			t.Logf("%s: ids mismatch %d/%d (%.2f%%), without specials %d, decode %d, pairs %d/%d",
				v.Name, idBad, len(v.Cases), 100*float64(idBad)/float64(len(v.Cases)), plainBad, decBad, pairBad, len(v.PairCases))
		})
	}
}

// TestEncodePairBERT checks the pair layout by hand on the real BERT file:
// [CLS] a [SEP] b [SEP], type ids 0 through the first [SEP] and 1 after.
func TestEncodePairBERT(t *testing.T) {
	tk, err := LoadFile(filepath.Join("testdata", "real", "bert-base-uncased", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(tok string) int {
		v, ok := tk.TokenToID(tok)
		if !ok {
			t.Fatalf("%q not in the vocabulary", tok)
		}
		return v
	}
	ids, types, err := tk.EncodePair("Hello world", "Good DAY!", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{101, id("hello"), id("world"), 102, id("good"), id("day"), id("!"), 102}
	wantTypes := []int{0, 0, 0, 0, 1, 1, 1, 1}
	if !slices.Equal(ids, want) || !slices.Equal(types, wantTypes) {
		t.Errorf("EncodePair = %v %v, want %v %v", ids, types, want, wantTypes)
	}
	ids, types, _ = tk.EncodePair("Hello", "day", false)
	if want, wt := []int{id("hello"), id("day")}, []int{0, 1}; !slices.Equal(ids, want) || !slices.Equal(types, wt) {
		t.Errorf("EncodePair without specials = %v %v, want %v %v", ids, types, want, wt)
	}
	if tk.BOS() != 101 || tk.EOS() != 102 || tk.UNK() != 100 {
		t.Errorf("BOS, EOS, UNK = %d, %d, %d; want 101, 102, 100 ([CLS], [SEP], [UNK])", tk.BOS(), tk.EOS(), tk.UNK())
	}
}

// TestWordPieceByHand checks greedy longest-match-first, the ## prefix,
// max_input_chars_per_word and unk on a five-piece vocabulary.
func TestWordPieceByHand(t *testing.T) {
	m, err := buildWordPiece(obj{"max_input_chars_per_word": 8.0}, map[string]int{"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "unaff": 4, "##a": 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in   string
		want []int
	}{
		{"unaffable", []int{0}}, // 9 chars > 8
		{"unaffa", []int{4, 5}}, // longest first: unaff, then ##a
		{"unable", []int{1, 3}},
		{"unx", []int{0}}, // one part missing: the whole word is unk
		{"", nil},
	} {
		if got := m.tokenize(tt.in, nil); !slices.Equal(got, tt.want) {
			t.Errorf("tokenize(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestUnigramByHand checks the Viterbi path, unk fusion and byte fallback
// on scores where the best path is computed by hand.
func TestUnigramByHand(t *testing.T) {
	vocab := []any{
		[]any{"<unk>", 0.0}, []any{"a", -1.0}, []any{"b", -1.0}, []any{"ab", -1.5}, []any{"abc", -4.0},
		[]any{"c", -2.0}, []any{"<0x78>", -5.0}, []any{"<0x79>", -5.0},
	}
	m, err := buildUnigram(obj{"vocab": vocab, "unk_id": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	// "abc": ab+c = -3.5 beats abc = -4 and a+b+c = -4.
	// "xyab": x, y unknown (each min_score-10 = -15), fused into one unk.
	for _, tt := range []struct {
		in   string
		want []int
	}{{"abc", []int{3, 5}}, {"ab", []int{3}}, {"xyab", []int{0, 3}}, {"", nil}} {
		if got := m.tokenize(tt.in, nil); !slices.Equal(got, tt.want) {
			t.Errorf("tokenize(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	m, err = buildUnigram(obj{"vocab": vocab, "unk_id": 0.0, "byte_fallback": true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.tokenize("xyab", nil), []int{6, 7, 3}; !slices.Equal(got, want) {
		t.Errorf("byte_fallback tokenize(xyab) = %v, want %v", got, want)
	}
	if got, want := m.tokenize("zab", nil), []int{0, 3}; !slices.Equal(got, want) {
		t.Errorf("byte_fallback without <0x7A>: tokenize(zab) = %v, want %v", got, want)
	}
}

// TestPegasusSpecials: the Unigram file's unk is its unk_id's piece, EOS
// the </s> its post-processor appends.
func TestPegasusSpecials(t *testing.T) {
	tk, err := fromJSON(applyVariant(t, encBase(t, "pegasus"), nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	tk.inferSpecials(nil)
	if tok, _ := tk.IDToToken(tk.UNK()); tk.UNK() != 105 || tok != "<unk>" {
		t.Errorf("UNK() = %d (%q), want 105 (<unk>)", tk.UNK(), tok)
	}
	if tk.EOS() != 1 {
		t.Errorf("EOS() = %d, want 1 (</s>)", tk.EOS())
	}
	ids, _ := tk.Encode("Hello world", true)
	if ids[len(ids)-1] != 1 {
		t.Errorf("Encode(Hello world, true) = %v, want it to end with </s> (1)", ids)
	}
}

// TestUnigramNoUnk: without unk_id, text no piece covers is an error (HF's
// MissingUnkId), not a silent id.
func TestUnigramNoUnk(t *testing.T) {
	tk, err := fromJSON([]byte(`{"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b", -2.0]]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := tk.Encode("ab", false); err != nil || !slices.Equal(ids, []int{0, 1}) {
		t.Errorf("Encode(ab) = %v, %v; want [0 1]", ids, err)
	}
	if _, err := tk.Encode("abz", false); err == nil || !strings.Contains(err.Error(), "unk_id") {
		t.Errorf("Encode(abz) err = %v, want one naming unk_id", err)
	}
}

// TestEncoderBadJSON: malformed sections of WordPiece, Unigram, WordLevel
// and their components fail to load with an error naming the field.
func TestEncoderBadJSON(t *testing.T) {
	for _, tt := range []struct{ json, want string }{
		{`{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, `model.unk_token "[UNK]" is not in model.vocab`},
		{`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "max_input_chars_per_word": -1}}`, "model.max_input_chars_per_word"},
		{`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "continuing_subword_prefix": 3}}`, "model.continuing_subword_prefix"},
		{`{"model": {"type": "WordPiece", "vocab": {"[UNK]": "x"}}}`, `model.vocab["[UNK]"] is not a token id`},
		{`{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "[UNK]"}}`, `model.unk_token "[UNK]" is not in model.vocab`},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 3}}`, "model.unk_id 3 is past the end of model.vocab"},
		{`{"model": {"type": "Unigram", "vocab": [["a"]], "unk_id": 0}}`, "model.vocab[0] is not a [piece, score] pair"},
		{`{"model": {"type": "Unigram", "vocab": [["a", "x"]], "unk_id": 0}}`, "model.vocab[0] is not a [string, number] pair"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0, "byte_fallback": 1}}`, "model.byte_fallback"},
		{`{"model": {"type": "Unigram", "vocab": {"a": 1}, "unk_id": 0}}`, "model.vocab is not a list"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!"}}`, "normalizer Precompiled: precompiled_charsmap"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AQAAAA=="}}`, "normalizer Precompiled: precompiled_charsmap: trie size"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "normalizer": {"type": "BertNormalizer", "lowercase": "yes"}}`, "BertNormalizer: lowercase"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "normalizer": {"type": "BertNormalizer", "strip_accents": 1}}`, "BertNormalizer: strip_accents"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "pre_tokenizer": {"type": "CharDelimiterSplit", "delimiter": "ab"}}`, "CharDelimiterSplit pre_tokenizer: delimiter"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "pre_tokenizer": {"type": "Punctuation", "behavior": "Sideways"}}`, "Punctuation pre_tokenizer: unknown behavior"},
		{`{"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}, "decoder": {"type": "WordPiece", "prefix": 2}}`, "WordPiece decoder: prefix"},
	} {
		_, err := fromJSON([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.json, err, tt.want)
		}
	}
	// a bad pair template is reported by EncodePair, not at load
	tk, err := fromJSON([]byte(`{"model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"},
		"post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}], "pair": [{"Sequence": {"id": "C", "type_id": 0}}], "special_tokens": {}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tk.EncodePair("a", "b", true); err == nil || !strings.Contains(err.Error(), "post_processor.pair[0]") {
		t.Errorf("EncodePair err = %v, want one naming post_processor.pair[0]", err)
	}
}

// BenchmarkEncodeEncoders measures encode speed on the real files (a few
// MB of the golden texts): go test -run - -bench EncodeEncoders.
func BenchmarkEncodeEncoders(b *testing.B) {
	g, err := loadEncGoldens()
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		for _, s := range g.Texts {
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
	}
	lines := strings.Split(sb.String(), "\n")
	for _, name := range []string{"bert", "pegasus"} {
		b.Run(name, func(b *testing.B) {
			tk, err := fromJSON(applyVariant(b, encBase(b, name), nil, nil))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sb.Len()))
			b.ResetTimer()
			for range b.N {
				for _, l := range lines {
					if _, err := tk.Encode(l, true); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestBERTDirRoundTrip loads the real BERT directory (tokenizer.json and
// its tokenizer_config.json), saves it and loads the copy: same ids, pairs
// and specials.
func TestBERTDirRoundTrip(t *testing.T) {
	tk, err := Load(filepath.Join("testdata", "real", "bert-base-uncased"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Héllo, Wörld! 日本語 [MASK] don't", "한국어", ""} {
		a, _ := tk.Encode(s, true)
		b, _ := back.Encode(s, true)
		if !slices.Equal(a, b) || len(a) < 2 || a[0] != 101 || a[len(a)-1] != 102 {
			t.Errorf("Encode(%q) = %v, after Save and Load %v; want equal, in [CLS] ... [SEP]", s, a, b)
		}
		pa, ta, _ := tk.EncodePair(s, "x", true)
		pb, tb, _ := back.EncodePair(s, "x", true)
		if !slices.Equal(pa, pb) || !slices.Equal(ta, tb) {
			t.Errorf("EncodePair(%q, x) changed after Save and Load", s)
		}
	}
	if back.UNK() != 100 || back.BOS() != tk.BOS() || back.EOS() != tk.EOS() {
		t.Errorf("specials after Save and Load: UNK %d BOS %d EOS %d, want 100 %d %d", back.UNK(), back.BOS(), back.EOS(), tk.BOS(), tk.EOS())
	}
	if got, _ := back.Decode([]int{101, 7592, 1010, 2088, 999, 102}, true); got != "hello, world!" {
		t.Errorf("Decode = %q, want %q (WordPiece decoder with cleanup)", got, "hello, world!")
	}
}
