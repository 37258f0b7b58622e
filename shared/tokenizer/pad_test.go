package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPadFromVocab: BERT's tokenizer files name no pad token (no
// special_tokens_map.json), yet its [PAD] (id 0) is the pad, not the EOS
// fallback ([SEP]); a config that names pad_token still wins.
func TestPadFromVocab(t *testing.T) {
	src := filepath.Join("testdata", "real", "bert-base-uncased")
	tok, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PAD() != 0 || tok.EOS() != 102 || tok.BOS() != 101 {
		t.Errorf("bert: pad %d eos %d bos %d, want [PAD] 0, [SEP] 102, [CLS] 101", tok.PAD(), tok.EOS(), tok.BOS())
	}
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "special_tokens_map.json"), []byte(`{"pad_token": "[MASK]"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PAD() != 103 {
		t.Errorf("pad_token [MASK] in special_tokens_map.json: pad %d, want 103", tok.PAD())
	}
}
