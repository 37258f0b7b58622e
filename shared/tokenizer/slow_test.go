package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSlowGPT2Converted: the real GPT-2 slow files (vocab.json and
// merges.txt, no tokenizer.json) convert as transformers' GPT2Converter
// does: on varied text the ids equal those of GPT-2's own tokenizer.json
// (itself checked against Hugging Face tokenizers), special token
// included; Save writes a tokenizer.json.
func TestSlowGPT2Converted(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "data", "gpt2-tokenizer")
	if _, err := os.Stat(src); err != nil {
		t.Skip("../shared/data not present")
	}
	fast, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{VocabFile, MergesFile} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	slow, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		"Hello world", " leading space", "It's 2026 — naïve café, 日本語 and emoji 🙂!",
		"code: for i in range(10):\n\tprint(i)  # done", "<|endoftext|>next document", "   many   spaces\n\n\nnewlines",
		strings.Repeat("antidisestablishmentarianism ", 3),
	}
	for _, s := range texts {
		a, _ := fast.Encode(s, true)
		b, _ := slow.Encode(s, true)
		if !slices.Equal(a, b) {
			t.Errorf("%q: converted %v, tokenizer.json %v", s, b, a)
		}
		back, _ := slow.Decode(b, false)
		if back != s {
			t.Errorf("decode %q, want %q", back, s)
		}
	}
	if slow.EOS() != 50256 {
		t.Errorf("eos %d, want 50256", slow.EOS())
	}
	out := t.TempDir()
	if err := slow.Save(out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, TokenizerFile)); err != nil {
		t.Errorf("Save wrote no tokenizer.json: %v", err)
	}
	// neither file: a clear error
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("empty dir: %v", err)
	}
}

// TestSlowToyVocab: a slow GPT-2 tokenizer with tokenizer_config.json's
// added_tokens_decoder (transformers >= 4.34) keeps those tokens and ids.
func TestSlowToyVocab(t *testing.T) {
	src := filepath.Join("..", "..", "..", "shared", "data", "model-tiny-gpt2-toyvocab-lmbuddy")
	if _, err := os.Stat(src); err != nil {
		t.Skip("../shared/data not present")
	}
	tok, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tok.TokenToID("<|endoftext|>"); !ok || id != 20 || !tok.IsSpecial(20) {
		t.Errorf("<|endoftext|> id %d special %v, want 20 special", id, tok.IsSpecial(id))
	}
	if ids, _ := tok.Encode("<|endoftext|>", false); !slices.Equal(ids, []int{20}) {
		t.Errorf("the added token encodes to %v", ids)
	}
}
