package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func rlApp(t *testing.T, args ...string) error {
	t.Helper()
	log := zerolog.Nop()
	return newApp(&log).Run(append([]string{"rl"}, args...))
}

// TestInitAndTokenizerRefuseOverwrite (issue 11, item 2): rl init -o and
// rl tokenizer train -o refuse to replace a model or tokenizer already
// there unless --overwrite is given.
func TestInitAndTokenizerRefuseOverwrite(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 20)), 0o644)
	tok, base := filepath.Join(dir, "tok"), filepath.Join(dir, "base")
	if err := rlApp(t, "tokenizer", "train", "--vocab-size", "280", "-o", tok, corpus); err != nil {
		t.Fatal(err)
	}
	if err := rlApp(t, "tokenizer", "train", "--vocab-size", "270", "-o", tok, corpus); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("tokenizer train over a tokenizer: err = %v, want a refusal naming --overwrite", err)
	}
	if err := rlApp(t, "init", "--tokenizer", tok, "-o", base); err != nil {
		t.Fatal(err)
	}
	weights, _ := os.ReadFile(filepath.Join(base, "model.safetensors"))
	if err := rlApp(t, "init", "--tokenizer", tok, "--seed", "7", "-o", base); err == nil || !strings.Contains(err.Error(), "--overwrite") || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("init over a model: err = %v, want a refusal naming model.safetensors and --overwrite", err)
	}
	if err := rlApp(t, "tokenizer", "train", "--vocab-size", "270", "-o", base, corpus); err == nil || !strings.Contains(err.Error(), "a model") {
		t.Errorf("tokenizer train into a model dir: err = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(filepath.Join(base, "model.safetensors")); string(b) != string(weights) {
		t.Error("the model's weights changed")
	}
	if err := rlApp(t, "init", "--tokenizer", tok, "--seed", "7", "--overwrite", "-o", base); err != nil {
		t.Errorf("init --overwrite: %v", err)
	}
	// Into the tokenizer's own directory: allowed (the tokenizer is written back unchanged).
	if err := rlApp(t, "init", "--tokenizer", tok, "-o", tok); err != nil {
		t.Errorf("init into the tokenizer dir: %v", err)
	}
}
