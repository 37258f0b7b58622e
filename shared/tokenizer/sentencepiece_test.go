package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// spmFixture describes a SentencePiece ModelProto written by writeSPM.
type spmFixture struct {
	pieces    []spmPiece
	modelType int32
	omitSpec  bool // no trainer_spec at all
	addDummy  *bool
}

// spmBytes serializes f as sentencepiece's ModelProto (field numbers of
// sentencepiece_model.proto), with a few fields the converter must skip.
func (f spmFixture) spmBytes() []byte {
	var b []byte
	for _, p := range f.pieces {
		var pb []byte
		pb = protowire.AppendTag(pb, 1, protowire.BytesType)
		pb = protowire.AppendString(pb, p.piece)
		pb = protowire.AppendTag(pb, 2, protowire.Fixed32Type)
		pb = protowire.AppendFixed32(pb, math.Float32bits(p.score))
		if p.typ != spmNormal {
			pb = protowire.AppendTag(pb, 3, protowire.VarintType)
			pb = protowire.AppendVarint(pb, uint64(p.typ))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, pb)
	}
	if !f.omitSpec {
		var ts []byte
		ts = protowire.AppendTag(ts, 1, protowire.BytesType) // input: skipped
		ts = protowire.AppendString(ts, "corpus.txt")
		ts = protowire.AppendTag(ts, 3, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(f.modelType))
		ts = protowire.AppendTag(ts, 4, protowire.VarintType) // vocab_size: skipped
		ts = protowire.AppendVarint(ts, uint64(len(f.pieces)))
		ts = protowire.AppendTag(ts, 35, protowire.VarintType)
		ts = protowire.AppendVarint(ts, 1)
		ts = protowire.AppendTag(ts, 43, protowire.VarintType) // pad_id -1: a 10-byte varint
		ts = protowire.AppendVarint(ts, uint64(math.MaxUint64))
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, ts)
	}
	var ns []byte
	ns = protowire.AppendTag(ns, 1, protowire.BytesType)
	ns = protowire.AppendString(ns, "identity")
	if f.addDummy != nil {
		ns = protowire.AppendTag(ns, 3, protowire.VarintType)
		ns = protowire.AppendVarint(ns, protowire.EncodeBool(*f.addDummy))
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, ns)
	b = protowire.AppendTag(b, 99, protowire.Fixed64Type) // unknown field: skipped
	b = protowire.AppendFixed64(b, 7)
	return b
}

// tinySPM is a Llama-style BPE model: <unk>, <s>, </s>, the 256 byte
// pieces <0x00>..<0xFF> (ids 3..258), merged pieces with scores falling
// with the id, single characters, and a user-defined <tool>.
func tinySPM() spmFixture {
	p := []spmPiece{{"<unk>", 0, spmUnknown}, {"<s>", 0, spmControl}, {"</s>", 0, spmControl}}
	for i := range 256 {
		p = append(p, spmPiece{fmt.Sprintf("<0x%02X>", i), 0, spmByte})
	}
	for i, s := range []string{"▁h", "ll", "he", "▁he", "llo", "▁hello", "▁", "h", "e", "l", "o", "w"} {
		p = append(p, spmPiece{s, float32(-1 - i), spmNormal}) // ids 259..270
	}
	p = append(p, spmPiece{"<tool>", 0, spmUserDefined}) // 271
	return spmFixture{pieces: p, modelType: spmBPE}
}

func writeSPM(t *testing.T, f spmFixture, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SentencePieceFile), f.spmBytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSentencePieceTiny: a hand-written SentencePiece BPE model loads, and
// its ids, merges, specials and decoding are those worked out by hand.
func TestSentencePieceTiny(t *testing.T) {
	f := tinySPM()
	data, _, err := sentencePieceJSON(f.spmBytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Model struct {
			Merges [][2]string `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		t.Fatal(err)
	}
	// every split of each piece into two pieces, by the merged piece's score
	// then the ids of the two parts: "▁he" is ▁h(259)+e and ▁(265)+he
	wantMerges := [][2]string{{"▁", "h"}, {"l", "l"}, {"h", "e"}, {"▁h", "e"}, {"▁", "he"}, {"ll", "o"}, {"▁he", "llo"}}
	if !reflect.DeepEqual(tj.Model.Merges, wantMerges) {
		t.Errorf("merges %v, want %v", tj.Model.Merges, wantMerges)
	}

	tk, err := Load(writeSPM(t, f, nil))
	if err != nil {
		t.Fatal(err)
	}
	// ▁hello merges all the way; r and d are not pieces: byte fallback
	// <0x72> = 3+0x72, <0x64> = 3+0x64; é is <0xC3><0xA9>.
	cases := []struct {
		text    string
		special bool
		want    []int
	}{
		{"hello", true, []int{1, 264}},
		{"hello", false, []int{264}},
		{"hello world", true, []int{1, 264, 265, 270, 269, 3 + 0x72, 268, 103}},
		{"hé", false, []int{259, 3 + 0xC3, 3 + 0xA9}},
		{"  he", false, []int{265, 265, 262}},
		{"hi<tool>", false, []int{259, 3 + 'i', 271}},
		{"<tool>hi", false, []int{271, 259, 3 + 'i'}},
		{"</s>", false, []int{2}},
		{"", true, []int{1}},
	}
	for _, c := range cases {
		if got := encode(t, tk, c.text, c.special); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q, %v) = %v, want %v", c.text, c.special, got, c.want)
		}
	}
	if got := decode(t, tk, []int{1, 264, 265, 270, 269, 117, 268, 103}, true); got != "hello world" {
		t.Errorf("Decode = %q, want %q", got, "hello world")
	}
	if got := decode(t, tk, []int{259, 198, 172, 2}, false); got != "hé</s>" {
		t.Errorf("Decode = %q, want %q", got, "hé</s>")
	}
	if tk.BOS() != 1 || tk.EOS() != 2 || tk.UNK() != 0 || tk.VocabSize() != 272 {
		t.Errorf("bos %d eos %d unk %d size %d, want 1 2 0 272", tk.BOS(), tk.EOS(), tk.UNK(), tk.VocabSize())
	}
	if !tk.IsSpecial(1) || !tk.IsSpecial(0) || tk.IsSpecial(271) {
		t.Errorf("special <unk> %v <s> %v <tool> %v, want true true false", tk.IsSpecial(0), tk.IsSpecial(1), tk.IsSpecial(271))
	}

	// Save writes tokenizer.json (and keeps tokenizer.model); it reloads
	// to the same ids.
	out := t.TempDir()
	if err := tk.Save(out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{TokenizerFile, SentencePieceFile, ConfigFile} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("Save wrote no %s: %v", name, err)
		}
	}
	again, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := encode(t, again, c.text, c.special); !slices.Equal(got, c.want) {
			t.Errorf("saved: Encode(%q, %v) = %v, want %v", c.text, c.special, got, c.want)
		}
	}
	if again.EOS() != 2 {
		t.Errorf("saved: eos %d, want 2", again.EOS())
	}
	// the conversion is deterministic: the saved tokenizer.json is the one
	// converted, so the fingerprint a checkpoint records stays the same
	fa, err1 := tk.Fingerprint()
	fb, err2 := again.Fingerprint()
	if err1 != nil || err2 != nil || fa != fb {
		t.Errorf("fingerprint %s (%v) after save, %s (%v) converted", fb, err2, fa, err1)
	}
}

// TestSentencePieceConfig: tokenizer_config.json's add_bos_token,
// add_eos_token, legacy and add_prefix_space shape the conversion as in
// LlamaTokenizerFast, and so does the model's add_dummy_prefix.
func TestSentencePieceConfig(t *testing.T) {
	no := false
	cases := []struct {
		name   string
		f      func(*spmFixture)
		config string // tokenizer_config.json, then special_tokens_map.json after a newline
		text   string
		want   []int
		back   string // decoded without special tokens
	}{
		{"eos and no bos", nil, `{"add_bos_token": false, "add_eos_token": true}`, "hello", []int{264, 2}, "hello"},
		{"bos from special_tokens_map.json", nil, `{"bos_token": "<s>"}` + "\n" + `{"bos_token": {"content": "</s>"}}`, "hello", []int{2, 264}, "hello"},
		{"both", nil, `{"add_bos_token": true, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"}`, "hello", []int{1, 264, 2}, "hello"},
		// no Prepend: "hello" is he+llo, not ▁hello; no Strip on decode
		{"no prefix space", nil, `{"add_prefix_space": false}`, "hello", []int{1, 261, 263}, "hello"},
		{"no dummy prefix", func(f *spmFixture) { f.addDummy = &no }, ``, " hello", []int{1, 264}, " hello"},
		// non-legacy: Metaspace pre-tokenizer with prepend_scheme first
		{"non-legacy", nil, `{"legacy": false}`, "hello<tool>hello", []int{1, 264, 271, 261, 263}, "hello<tool>hello"},
		{"legacy", nil, `{"legacy": true}`, "hello<tool>hello", []int{1, 264, 271, 264}, "hello<tool> hello"},
	}
	for _, c := range cases {
		f := tinySPM()
		if c.f != nil {
			c.f(&f)
		}
		files := map[string]string{}
		if cfg, smap, ok := strings.Cut(c.config, "\n"); ok {
			files[ConfigFile], files[SpecialTokensFile] = cfg, smap
		} else if c.config != "" {
			files[ConfigFile] = c.config
		}
		tk, err := Load(writeSPM(t, f, files))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got := encode(t, tk, c.text, true)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", c.name, c.text, got, c.want)
		}
		if back := decode(t, tk, got, true); back != c.back {
			t.Errorf("%s: Decode(%v) = %q, want %q", c.name, got, back, c.back)
		}
	}
}

// TestSentencePieceAddedTokens: tokenizer_config.json's
// added_tokens_decoder adds tokens past the model's pieces (a pad token at
// 272) and restates pieces; its special tokens are found there.
func TestSentencePieceAddedTokens(t *testing.T) {
	cfg := `{"pad_token": "<pad>", "eos_token": "</s>", "added_tokens_decoder": {
		"2": {"content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
		"272": {"content": "<pad>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}}}`
	tk, err := Load(writeSPM(t, tinySPM(), map[string]string{ConfigFile: cfg}))
	if err != nil {
		t.Fatal(err)
	}
	if tk.PAD() != 272 || tk.EOS() != 2 || tk.BOS() != 1 || tk.VocabSize() != 273 || !tk.IsSpecial(272) {
		t.Errorf("pad %d eos %d bos %d size %d special(272) %v, want 272 2 1 273 true", tk.PAD(), tk.EOS(), tk.BOS(), tk.VocabSize(), tk.IsSpecial(272))
	}
	if got, want := encode(t, tk, "hello<pad></s>", false), []int{264, 272, 2}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := decode(t, tk, []int{1, 264, 272, 2}, true); got != "hello" {
		t.Errorf("Decode skipping specials = %q, want %q", got, "hello")
	}
}

// TestSpmMergesOrder: merges follow the merged piece's score, highest
// first, then the ids of the left and right parts (not the merged piece's
// id: the Llama-2 whitespace pieces tie at -1e9 and sort that way).
func TestSpmMergesOrder(t *testing.T) {
	pieces := []spmPiece{{"ab", -2, 1}, {"abc", -1, 1}, {"bc", -2, 1}, {"c", -5, 1}, {"b", -5, 1}, {"a", -5, 1}}
	vocab := map[string]int{}
	for i, p := range pieces {
		vocab[p.piece] = i
	}
	got := spmMerges(pieces, vocab)
	// abc (score -1) first: ab(0)+c before a(5)+bc; then ab and bc tie at
	// -2: b(4)+c before a(5)+b
	want := [][2]string{{"ab", "c"}, {"a", "bc"}, {"b", "c"}, {"a", "b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spmMerges = %v, want %v", got, want)
	}
}

// TestSentencePieceBadInput: corrupt, empty, truncated and non-BPE models
// give an error naming the file, never a panic.
func TestSentencePieceBadInput(t *testing.T) {
	good := tinySPM().spmBytes()
	uni := tinySPM()
	uni.modelType = 1
	noSpec := tinySPM()
	noSpec.omitSpec = true
	nan := tinySPM()
	nan.pieces[260].score = float32(math.NaN())
	dup := tinySPM()
	dup.pieces = append(dup.pieces, spmPiece{"ll", -20, spmNormal})
	cases := []struct {
		name string
		data []byte
		cfg  string
		want string
	}{
		{"empty", nil, "", "empty file"},
		{"garbage", []byte("this is not a protobuf \xff\xff\xff\xff"), "", "not a SentencePiece model"},
		{"truncated", good[:len(good)/2], "", "the file is truncated"},
		{"truncated in a piece", good[:7], "", "not a SentencePiece model"},
		{"a tokenizer.json", []byte(`{"model": {"type": "BPE"}}`), "", "not a SentencePiece model"},
		{"no trainer_spec", noSpec.spmBytes(), "", "no trainer_spec"},
		{"unigram", uni.spmBytes(), "", "Unigram"},
		{"duplicate piece", dup.spmBytes(), "", `"ll" repeats pieces[260]`},
		{"NaN score", nan.spmBytes(), "", `pieces[260] "ll" has score NaN`},
		{"bad piece", append(slices.Clip(good), 0x0a, 3, 0x0a, 1, 0xff), "", "not valid UTF-8"},
		{"bos not in model", good, `{"bos_token": "<bos>"}`, `bos_token "<bos>" is not in tokenizer.model`},
		{"bad flag", good, `{"legacy": "yes"}`, "legacy: want true or false"},
		{"added token mismatch", good, `{"added_tokens_decoder": {"1": {"content": "<bos>", "special": true}}}`, `added_tokens_decoder[1] is "<bos>"`},
	}
	for _, c := range cases {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, SentencePieceFile), c.data, 0o644)
		if c.cfg != "" {
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.cfg), 0o644)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, SentencePieceFile)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s and saying %q", c.name, err, SentencePieceFile, c.want)
		}
	}
}

// llamaTexts returns a few hundred varied strings: English, accents, CJK,
// emoji (byte fallback), spaces and newlines in every position, the
// special tokens' text, and random mixes of all of them.
func llamaTexts() []string {
	base := []string{
		"Hello world", "hello, World!", "The quick brown fox jumps over the lazy dog.",
		"It's 2026 — naïve café, résumé, Ångström, façade", "Straße Øre Ærø ñandú çà", "Привет, мир", "Γειά σου κόσμε",
		"日本語のテキスト", "中文分词测试", "한국어 문장", "ภาษาไทย", "مرحبا بالعالم", "שלום עולם", "हिन्दी",
		"emoji 😀🙂👍🏽 🇺🇸 👩\u200d👩\u200d👧", "🤖🦙", "math ∑∫√∞ ≠ ≤", "tab\tseparated\tvalues",
		" leading", "  two leading", "trailing ", "trailing  ", "multiple   inner    spaces", " ", "  ", "",
		"line one\nline two", "\n", "\n\n", "crlf\r\n", "\nstarts with newline", "ends with newline\n",
		"<s>", "</s>", "<unk>", "<s>Hello</s>", "a</s>b", " <s> spaced </s> ", "<s><s></s>",
		"numbers 12345 and 3.14159", "code: for i in range(10):\n    print(i)\n", "{\"json\": [1, 2, 3]}",
		"URLs https://example.com/path?q=1&b=2", "e-mail: someone@example.org", "C++ && Go || Rust",
		"antidisestablishmentarianism", "ALL CAPS TEXT", "MiXeD cAsE", "don't won't can't I'm you're",
		"\u00a0nbsp and\u3000ideographic", "zero\u200bwidth", "combining e\u0301 vs é", "\x00control\x01chars\x7f",
		"[INST] Hi [/INST]", "<<SYS>>\nsys\n<</SYS>>", "▁already▁metaspace", "<0x41> literal byte text",
	}
	out := slices.Clone(base)
	for i, a := range base {
		b := base[(i*7+3)%len(base)]
		out = append(out, a+" "+b, a+b, " "+a+"\n"+b+" ")
	}
	rng := rand.New(rand.NewPCG(12, 34))
	parts := []string{"a", "é", "世", "😀", " ", "  ", "\n", "<s>", "</s>", "the", "ing", "▁", "\t", "x1", "ß", "ー"}
	for range 100 {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			sb.WriteString(parts[rng.IntN(len(parts))])
		}
		out = append(out, sb.String())
	}
	return out
}

// TestSentencePieceLlama: the real Llama-2 tokenizer.model converts to the
// tokenizer.json transformers produced from it (vocab, merges in order,
// normalizer, pre-tokenizer, decoder, post-processor and added tokens
// equal), and encodes a few hundred varied strings to the same ids as that
// tokenizer.json, decoding back to the text; the texts of testdata/real
// get Hugging Face's own ids and tokenizer_test.go's goldens
// go-sentencepiece's.
func TestSentencePieceLlama(t *testing.T) {
	src := sharedData(t, "llama-tokenizer-hf-internal-testing")
	model, err := os.ReadFile(filepath.Join(src, SentencePieceFile))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile(filepath.Join(src, TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data, _, err := sentencePieceJSON(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("converted %d bytes of tokenizer.model in %v", len(model), time.Since(start))

	var got, want map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	gm, wm := got["model"].(map[string]any), want["model"].(map[string]any)
	gv, wv := gm["vocab"].(map[string]any), wm["vocab"].(map[string]any)
	if len(gv) != len(wv) || len(gv) != 32000 {
		t.Errorf("vocab size %d, want %d", len(gv), len(wv))
	}
	// This copy of tokenizer.json lost piece 31353, U+2028 LINE SEPARATOR
	// (its key is ""); tokenizer.model has it.
	if wv[""] == 31353.0 && gv["\u2028"] == 31353.0 {
		delete(wv, "")
		wv["\u2028"] = 31353.0
	}
	for tok, id := range wv {
		if gv[tok] != id {
			t.Errorf("vocab[%q] = %v, want %v", tok, gv[tok], id)
		}
	}
	gms, wms := gm["merges"].([]any), wm["merges"].([]any)
	if len(gms) != len(wms) {
		t.Errorf("%d merges, want %d", len(gms), len(wms))
	}
	for i := range min(len(gms), len(wms)) {
		if !reflect.DeepEqual(gms[i], wms[i]) {
			t.Fatalf("merges[%d] = %v, want %v", i, gms[i], wms[i])
		}
	}
	for k := range wm {
		if k != "vocab" && k != "merges" && !reflect.DeepEqual(gm[k], wm[k]) {
			t.Errorf("model.%s = %v, want %v", k, gm[k], wm[k])
		}
	}
	for k := range want {
		if k != "model" && !reflect.DeepEqual(got[k], want[k]) {
			g, _ := json.Marshal(got[k])
			w, _ := json.Marshal(want[k])
			t.Errorf("%s =\n%s\nwant\n%s", k, g, w)
		}
	}

	// the folder without tokenizer.json, with and without its configs
	bare := t.TempDir()
	os.WriteFile(filepath.Join(bare, SentencePieceFile), model, 0o644)
	withCfg := t.TempDir()
	for _, name := range []string{SentencePieceFile, ConfigFile, SpecialTokensFile} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(withCfg, name), b, 0o644)
	}
	start = time.Now()
	fast, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load of the folder with tokenizer.json: %v", time.Since(start))
	start = time.Now()
	if _, err := Load(bare); err != nil {
		t.Fatal(err)
	}
	t.Logf("Load of a folder with only tokenizer.model: %v", time.Since(start))
	texts := llamaTexts()
	if len(texts) < 300 {
		t.Fatalf("only %d texts", len(texts))
	}
	for _, dir := range []string{bare, withCfg} {
		slow, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if slow.BOS() != 1 || slow.EOS() != 2 || slow.UNK() != 0 || slow.VocabSize() != 32000 {
			t.Errorf("%s: bos %d eos %d unk %d size %d, want 1 2 0 32000", dir, slow.BOS(), slow.EOS(), slow.UNK(), slow.VocabSize())
		}
		bad := 0
		for _, s := range texts {
			for _, special := range []bool{true, false} {
				a := encode(t, fast, s, special)
				b := encode(t, slow, s, special)
				if !slices.Equal(a, b) && bad < 10 {
					bad++
					t.Errorf("Encode(%q, %v): converted %v, tokenizer.json %v", s, special, b, a)
				}
			}
			ids := encode(t, slow, s, false)
			if a, b := decode(t, fast, ids, false), decode(t, slow, ids, false); a != b {
				t.Errorf("Decode(%v): converted %q, tokenizer.json %q", ids, b, a)
			}
		}
	}
	// decode round-trips text that has no special tokens' text, no
	// leading space (Strip) and no "▁"
	slow, _ := Load(bare)
	for _, s := range texts {
		if strings.HasPrefix(s, " ") || strings.Contains(s, "▁") || strings.Contains(s, "<s>") || strings.Contains(s, "</s>") || strings.Contains(s, "<unk>") {
			continue
		}
		if back := decode(t, slow, encode(t, slow, s, true), true); back != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, back)
		}
	}
	// Hugging Face's own ids (testdata/real/goldens.json, made by
	// tools/goldens/chat_tokens.py with transformers on the full Llama-2
	// files), rendered chat templates included
	gb, err := os.ReadFile(filepath.Join("testdata", "real", "goldens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hf map[string]struct {
		Cases []struct {
			Text       string `json:"text"`
			IDs        []int  `json:"ids"`
			IDsSpecial []int  `json:"ids_special"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(gb, &hf); err != nil {
		t.Fatal(err)
	}
	if len(hf["llama2"].Cases) == 0 {
		t.Fatal("no llama2 cases in testdata/real/goldens.json")
	}
	for _, c := range hf["llama2"].Cases {
		if got := encode(t, slow, c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q, false) = %v, Hugging Face %v", c.Text, got, c.IDs)
		}
		if got := encode(t, slow, c.Text, true); !slices.Equal(got, c.IDsSpecial) {
			t.Errorf("Encode(%q, true) = %v, Hugging Face %v", c.Text, got, c.IDsSpecial)
		}
	}
	// the goldens of tokenizer_test.go (eliben/go-sentencepiece on this
	// tokenizer.model)
	for _, g := range goldens {
		if got := encode(t, slow, g.text, false); !slices.Equal(got, g.llama) {
			t.Errorf("Encode(%q, false) = %v, go-sentencepiece %v", g.text, got, g.llama)
		}
	}
	// the chat template of tokenizer_config.json comes through
	withTmpl, _ := Load(withCfg)
	if withTmpl.ChatTemplate() == "" || withTmpl.ChatTemplate() != fast.ChatTemplate() {
		t.Errorf("chat template %q, want tokenizer_config.json's", withTmpl.ChatTemplate())
	}
}

// BenchmarkConvertLlamaSPM measures the conversion of the 32000-piece
// Llama-2 tokenizer.model to tokenizer.json.
func BenchmarkConvertLlamaSPM(b *testing.B) {
	src := sharedData(b, "llama-tokenizer-hf-internal-testing")
	model, err := os.ReadFile(filepath.Join(src, SentencePieceFile))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := sentencePieceJSON(model, nil); err != nil {
			b.Fatal(err)
		}
	}
}
