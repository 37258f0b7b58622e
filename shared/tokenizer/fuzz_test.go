package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzLoadTokenizerJSON: no tokenizer.json panics or hangs the loader, and
// an accepted one encodes and decodes text without panicking.
func FuzzLoadTokenizerJSON(f *testing.F) {
	tk, err := Train(slices.Values(smallCorpus), TrainOptions{VocabSize: 300, SpecialTokens: []string{"<s>", "</s>", "<pad>"}})
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	if err := tk.Save(dir); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, TokenizerFile))
	if err != nil {
		f.Fatal(err)
	}
	g := string(good)
	for _, s := range []string{
		g,
		strings.Replace(g, `"type": "BPE"`, `"type": "Foo"`, 1),
		strings.Replace(g, `"type": "BPE"`, `"type": "WordLevel"`, 1),
		strings.Replace(g, `"merges": [`, `"merges": ["nothere y",`, 1),
		strings.Replace(g, `"merges": [`, `"merges": [["a"], 3, "a b c",`, 1),
		strings.Replace(g, `"id": 0`, `"id": -5`, 1),
		strings.Replace(g, `"id": 0`, `"id": 1000000000000`, 1),
		g[:len(g)/2],
		`{"model": {}}`, `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}`,
		`{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}, "added_tokens": [{"id": 99999999, "content": "x", "special": true}]}`,
		`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [null]}}`,
		`{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "he": 3, "##llo": 4, "w": 5, "##orld": 6}, "unk_token": "[UNK]", "max_input_chars_per_word": 5},
		  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
		  "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
		  "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]}}`,
		`{"model": {"type": "Unigram", "unk_id": 0, "byte_fallback": true, "vocab": [["<unk>", 0], ["\u2581he", -1], ["llo", -2], ["<0x68>", -3], ["x", -1]]},
		  "normalizer": {"type": "Precompiled", "precompiled_charsmap": "EAAAAAAEAABhAQAAAAUAAAEAAIB4AHl6AA=="},
		  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true}, {"type": "Punctuation"}, {"type": "CharDelimiterSplit", "delimiter": "-"}]},
		  "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
		  "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}], "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": {}}}`,
		`{"model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1}, "unk_token": "<unk>"}, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": {"type": "RobertaProcessing", "sep": ["a", 1], "cls": ["<unk>", 0]}}`,
		`{"version": "1.0"}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s), "hello world, héllo <s> wörld\n\x00\xff")
	}
	f.Fuzz(func(t *testing.T, b []byte, text string) {
		tok, err := fromJSON(b)
		if err != nil {
			return
		}
		tok.inferSpecials(nil)
		ids, err := tok.Encode(text, true)
		if err != nil {
			return
		}
		tok.Decode(ids, false)
		tok.Decode(ids, true)
		tok.Decode([]int{-1, tok.VocabSize(), 1 << 40}, false)
		tok.EncodePair(text, text, true)
		tok.EncodePair(text, "", false)
	})
}

// FuzzLoadSentencePiece: no tokenizer.model panics or hangs the converter,
// an accepted one always gives a tokenizer.json that loads, and that
// tokenizer encodes and decodes text without panicking.
func FuzzLoadSentencePiece(f *testing.F) {
	good := tinySPM().spmBytes()
	uni := tinySPM()
	uni.modelType = 1
	small := tinySPM()
	small.pieces = small.pieces[:3]
	for _, b := range [][]byte{
		good, good[:len(good)/2], good[:len(good)-9], good[:1], uni.spmBytes(), small.spmBytes(),
		append(slices.Clip(good), 0x0a, 3, 0x0a, 1, 0xff), []byte("\x12\x00"), []byte("\x0a\x00\x12\x00"),
		[]byte("\x0a\x02\x0a\x00\x12\x02\x18\x02"), []byte(`{"model": {}}`), nil,
	} {
		f.Add(b, "hello world, héllo <s> wörld\n\x00\xff 😀")
	}
	f.Fuzz(func(t *testing.T, b []byte, text string) {
		data, _, err := sentencePieceJSON(b, nil)
		if err != nil {
			return
		}
		tok, err := fromJSON(data)
		if err != nil {
			t.Fatalf("converted tokenizer.json does not load: %v", err)
		}
		tok.inferSpecials(nil)
		ids, err := tok.Encode(text, true)
		if err != nil {
			return
		}
		tok.Decode(ids, false)
		tok.Decode(ids, true)
		tok.Decode([]int{-1, tok.VocabSize(), 1 << 40}, false)
	})
}
