package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func trainTok(t *testing.T, vocab int) string {
	t.Helper()
	corpus := []string{"the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs", "how vexingly quick daft zebras jump"}
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: vocab, MinFrequency: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNewSaveLoad(t *testing.T) {
	tokDir := trainTok(t, 300)
	m, tok, err := New("tiny", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if m.Config.VocabSize != 320 || m.Config.VocabSize < tok.VocabSize() {
		t.Errorf("vocab_size %d for a %d-token tokenizer, want it rounded up to 320", m.Config.VocabSize, tok.VocabSize())
	}
	dir := t.TempDir()
	if err := Save(dir, m, tok); err != nil {
		t.Fatal(err)
	}
	m2, tok2, err := Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Free()
	if tok2.VocabSize() != tok.VocabSize() || *m2.Config.EOSTokenID != tok.EOS() {
		t.Errorf("reloaded tokenizer %d tokens eos %d", tok2.VocabSize(), *m2.Config.EOSTokenID)
	}
}

// TestTokenizerVocabularyMismatch: a tokenizer with more tokens than the
// model's vocabulary is an error naming tokenizer.json.
func TestTokenizerVocabularyMismatch(t *testing.T) {
	small := trainTok(t, 270)
	m, tok, err := New("tiny", small, model.LMHead, tensor.Float32, tensor.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	dir := t.TempDir()
	if err := Save(dir, m, tok); err != nil {
		t.Fatal(err)
	}
	big := trainTok(t, 400)
	b, _ := os.ReadFile(filepath.Join(big, "tokenizer.json"))
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644)
	_, _, err = Load(dir, model.LoadOptions{})
	if err == nil {
		t.Fatal("Load succeeded with a mismatched tokenizer")
	}
	for _, s := range []string{"tokenizer.json", "vocab_size"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if _, _, err := New("tiny", t.TempDir(), model.LMHead, tensor.Float32, tensor.CPU, 1); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("missing tokenizer: err = %v, want one naming tokenizer.json", err)
	}
}

// TestTokenizerContentMismatch (issue 11, item 2): a smaller tokenizer of
// another corpus passes the size check but not the content check, both in
// the model's directory and given separately (LoadTokenizerFor); the
// model's own tokenizer passes.
func TestTokenizerContentMismatch(t *testing.T) {
	own := trainTok(t, 300)
	m, tok, err := New("tiny", own, model.LMHead, tensor.Float32, tensor.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	dir := t.TempDir()
	if err := Save(dir, m, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenizerFor(m, dir, own); err != nil {
		t.Errorf("the model's own tokenizer: %v", err)
	}
	corpus := []string{"lorem ipsum dolor sit amet consectetur", "adipiscing elit sed do eiusmod tempor"}
	other, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1})
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if err := other.Save(otherDir); err != nil {
		t.Fatal(err)
	}
	if err := Check(m, other, "other"); err != nil {
		t.Fatalf("the size check already fails (%v): the test needs a smaller tokenizer", err)
	}
	if _, err := LoadTokenizerFor(m, dir, otherDir); err == nil || !strings.Contains(err.Error(), "is not the tokenizer the model in "+dir+" was saved with") {
		t.Errorf("another model's tokenizer via --tokenizer: err = %v, want a content mismatch", err)
	}
	b, _ := os.ReadFile(filepath.Join(otherDir, "tokenizer.json"))
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644)
	if _, _, err := Load(dir, model.LoadOptions{}); err == nil || !strings.Contains(err.Error(), TokenizerFingerprintFile) {
		t.Errorf("replaced tokenizer.json in the model dir: err = %v, want a content mismatch naming %s", err, TokenizerFingerprintFile)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestSaveKeepsSourceFiles: a stage's output keeps every config.json and
// generation_config.json field of its source (a Llama-3.1-style
// checkpoint: eos list, both dtype keys, sampling defaults, fields rl does
// not know), its dtype (bfloat16), and the tokenizer's companion files.
func TestSaveKeepsSourceFiles(t *testing.T) {
	tokDir := trainTok(t, 300)
	companions := map[string]string{
		"tokenizer.model":     "sentencepiece\x00bytes",
		"vocab.json":          `{"a": 0}`,
		"merges.txt":          "#version: 0.2\n",
		"chat_template.jinja": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}",
	}
	for name, data := range companions {
		if err := os.WriteFile(filepath.Join(tokDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, tok, err := New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := Save(src, m, tok); err != nil {
		t.Fatal(err)
	}
	m.Free()
	cfg := readJSON(t, filepath.Join(src, "config.json"))
	for k, v := range map[string]any{
		"eos_token_id": []any{2.0, 3.0, 4.0}, "bos_token_id": 1.0, "dtype": "bfloat16", "torch_dtype": "bfloat16",
		"rope_theta": 500000.0, "pretraining_tp": 1.0, "transformers_version": "4.56.1", "attention_dropout": 0.0,
		"custom": map[string]any{"nested": []any{"x", 1.0}},
	} {
		cfg[k] = v
	}
	gen := map[string]any{"bos_token_id": 1.0, "do_sample": true, "eos_token_id": []any{2.0, 3.0, 4.0}, "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.56.1"}
	for name, v := range map[string]any{"config.json": cfg, "generation_config.json": gen} {
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	m, tok, err = Load(src, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	out := t.TempDir()
	if err := Save(out, m, tok); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "generation_config.json"} {
		got, want := readJSON(t, filepath.Join(out, name)), readJSON(t, filepath.Join(src, name))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s changed:\n got %v\nwant %v", name, got, want)
		}
	}
	st, err := safetensors.ReadModelDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, ten := range st.Tensors {
		if ten.DType != safetensors.BF16 {
			t.Errorf("%s saved as %s, want BF16 (the source's dtype)", name, ten.DType)
			break
		}
	}
	for name, want := range companions {
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q (err %v), want %q", name, got, err, want)
		}
	}
}
