package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
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
