package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// smallCorpus is a few hundred short English sentences.
var smallCorpus = func() []string {
	subjects := []string{"The cat", "A dog", "My friend", "The teacher", "Our neighbour", "The old man", "Every child"}
	verbs := []string{"walks to", "looks at", "thinks about", "talks with", "waits for", "reads about", "sings to"}
	objects := []string{"the river.", "a small house!", "the morning sun?", "their garden, slowly.", "the 3 red apples;", "the tower at 10:30."}
	var out []string
	for i, s := range subjects {
		for j, v := range verbs {
			for k, o := range objects {
				out = append(out, fmt.Sprintf("%s %s %s", s, v, o))
				if (i+j+k)%5 == 0 {
					out = append(out, fmt.Sprintf("%s\n\t%s %s<|endoftext|>", s, v, o))
				}
			}
		}
	}
	return out
}()

// heldOut has words and characters that are not in smallCorpus.
var heldOut = []string{
	"Zebras quickly jumped over lazy foxes.",
	"naïve café — ünïcödé ✓, 中文, русский, 😀🎉",
	"tabs\tnewlines\r\n\n  and   spaces  ",
	"JSON: {\"k\": [1, 2.5e-3, null]} <|endoftext|> after",
	"\x00\x01 control \u00a0 bytes",
}

func TestTrainSmall(t *testing.T) {
	opts := TrainOptions{VocabSize: 350, SpecialTokens: []string{"<|endoftext|>", "<pad>"}, ModelMaxLength: 128, ChatTemplate: "{{ x }}"}
	tk, err := Train(slices.Values(smallCorpus), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	re, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Tokenizer{tk, re} {
		got := []int{x.VocabSize(), x.BOS(), x.EOS(), x.PAD(), x.UNK(), x.ModelMaxLength()}
		if want := []int{350, 0, 0, 0, -1, 128}; !slices.Equal(got, want) {
			t.Errorf("size, bos, eos, pad, unk, maxLen = %v, want %v", got, want)
		}
		if x.ChatTemplate() != "{{ x }}" {
			t.Errorf("ChatTemplate() = %q", x.ChatTemplate())
		}
		// The byte alphabet is sorted by rune: Ġ (U+0120) comes after the
		// 188 byte runes below U+0100.
		for tok, want := range map[string]int{"<|endoftext|>": 0, "<pad>": 1, "!": 2, "Ġ": 222} {
			if id, ok := x.TokenToID(tok); !ok || id != want {
				t.Errorf("TokenToID(%q) = %d, %v, want %d", tok, id, ok, want)
			}
		}
		if !x.IsSpecial(1) || x.IsSpecial(2) {
			t.Errorf("IsSpecial(1), IsSpecial(2) = %v, %v, want true, false", x.IsSpecial(1), x.IsSpecial(2))
		}
	}
	for _, s := range append(slices.Clone(heldOut), smallCorpus[:20]...) {
		ids := encode(t, tk, s, true)
		if got := encode(t, re, s, true); !slices.Equal(got, ids) {
			t.Errorf("reloaded Encode(%q) = %v, want %v", s, got, ids)
		}
		if got := decode(t, re, ids, false); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	if got, want := encode(t, re, "<pad><|endoftext|>", true), []int{1, 0}; !slices.Equal(got, want) {
		t.Errorf("Encode(specials) = %v, want %v", got, want)
	}
	// Training learned something: a corpus sentence takes far fewer tokens than bytes.
	s := smallCorpus[0]
	if n := len(encode(t, tk, s, false)); n*2 > len(s) {
		t.Errorf("%q: %d tokens for %d bytes", s, n, len(s))
	}
}

// TestTrainFormat checks the saved tokenizer.json against the layout of
// Hugging Face's GPT-2 tokenizer.json.
func TestTrainFormat(t *testing.T) {
	tk, err := Train(slices.Values(smallCorpus), TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version":    "1.0",
		"truncation": nil,
		"padding":    nil,
		"added_tokens": []any{map[string]any{
			"id": 0.0, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true,
		}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
	}
	for key, w := range want {
		g, _ := json.Marshal(got[key])
		wj, _ := json.Marshal(w)
		if !bytes.Equal(g, wj) {
			t.Errorf("%s = %s, want %s", key, g, wj)
		}
	}
	model, _ := got["model"].(map[string]any)
	wantModel := map[string]any{
		"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
		"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
	}
	for key, w := range wantModel {
		if v, ok := model[key]; !ok || v != w {
			t.Errorf("model.%s = %v (present %v), want %v", key, v, ok, w)
		}
	}
	vocab, _ := model["vocab"].(map[string]any)
	merges, _ := model["merges"].([]any)
	if len(vocab) != 300 || len(merges) == 0 {
		t.Fatalf("len(vocab), len(merges) = %d, %d, want 300, > 0", len(vocab), len(merges))
	}
	for _, m := range merges {
		a, b, ok := strings.Cut(m.(string), " ")
		if !ok || vocab[a] == nil || vocab[b] == nil || vocab[a+b] == nil {
			t.Errorf("merge %q is not two vocabulary tokens joined by a space making a third", m)
		}
	}

	// The same top-level keys, in the same order, as the GPT-2 file.
	gpt2, err := os.ReadFile(filepath.Join(sharedData(t, "gpt2-tokenizer"), TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := topLevelKeys(t, data), topLevelKeys(t, gpt2); !slices.Equal(g, w) {
		t.Errorf("top-level keys %v, GPT-2 has %v", g, w)
	}
}

func topLevelKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestTrainMerges checks the merge order on a classic example: highest
// pair count first, ties broken by the lowest pair of ids.
func TestTrainMerges(t *testing.T) {
	tk, err := Train(slices.Values([]string{"aaabdaaabac"}), TrainOptions{VocabSize: 260, MinFrequency: 1, SpecialTokens: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Model struct {
			Merges []string `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(tk.fileData, &f); err != nil {
		t.Fatal(err)
	}
	// aa (count 4); then ab and aa+a tie at 2 and a,b has the lower ids;
	// then aa+ab (2), then the first count-1 pair by ids.
	if want := []string{"a a", "a b", "aa ab", "a c"}; !slices.Equal(f.Model.Merges, want) {
		t.Errorf("merges = %q, want %q", f.Model.Merges, want)
	}
	if got := tk.BOS(); got != -1 {
		t.Errorf("BOS() without special tokens = %d, want -1", got)
	}
}

func TestTrainStopsEarly(t *testing.T) {
	// Only a handful of pairs exist, so the vocabulary cannot reach 1000.
	tk, err := Train(slices.Values([]string{"ab ab ab abc abc"}), TrainOptions{VocabSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.VocabSize(); got >= 1000 || got <= 257 {
		t.Errorf("VocabSize() = %d, want between 258 and 999", got)
	}
	ids := encode(t, tk, " abc", false)
	if tok, _ := tk.IDToToken(ids[0]); len(ids) != 1 || tok != "Ġabc" {
		t.Errorf("Encode(\" abc\") = %v (%q), want the single token Ġabc", ids, tok)
	}
}

func TestTrainDeterministic(t *testing.T) {
	a, err := Train(slices.Values(smallCorpus), TrainOptions{VocabSize: 350})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(slices.Values(smallCorpus), TrainOptions{VocabSize: 350})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.fileData, b.fileData) {
		t.Error("two trainings on the same corpus give different tokenizer.json")
	}
}

func TestTrainErrors(t *testing.T) {
	tests := []struct {
		name string
		opts TrainOptions
		msg  string
	}{
		{"vocab too small", TrainOptions{VocabSize: 256}, "less than the 256 byte symbols plus 1 special tokens"},
		{"duplicate special", TrainOptions{SpecialTokens: []string{"<s>", "<s>"}}, `duplicate special token "<s>"`},
		{"empty special", TrainOptions{SpecialTokens: []string{""}}, "empty special token"},
		{"negative min frequency", TrainOptions{MinFrequency: -1}, "negative MinFrequency"},
	}
	for _, tt := range tests {
		_, err := Train(slices.Values(smallCorpus), tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "tokenizer: train: ") {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.msg)
		}
	}
}

func TestTrainTinyShakespeare(t *testing.T) {
	data, err := os.ReadFile(sharedData(t, "tinyshakespeare/input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	cut := strings.LastIndex(text[:len(text)*9/10], "\n\n")
	train, test := strings.Split(text[:cut], "\n\n"), strings.Split(text[cut+2:], "\n\n")
	start := time.Now()
	tk, err := Train(slices.Values(train), TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained vocab %d on %d bytes in %v", tk.VocabSize(), cut, time.Since(start))
	if got := tk.VocabSize(); got != 8192 {
		t.Errorf("VocabSize() = %d, want 8192", got)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	re, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens, bytesIn := 0, 0
	for _, s := range append(test, heldOut...) {
		ids := encode(t, re, s, false)
		tokens += len(ids)
		bytesIn += len(s)
		if got := decode(t, re, ids, false); got != s {
			t.Errorf("Decode(Encode(%.40q)) = %.40q", s, got)
		}
	}
	t.Logf("held-out: %d bytes -> %d tokens (%.2f bytes/token)", bytesIn, tokens, float64(bytesIn)/float64(tokens))
}
