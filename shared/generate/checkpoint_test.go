package generate

import (
	"os"
	"testing"

	"github.com/rlsuite/rl/shared/model"
)

// TestGenerateFromCheckpoints generates from a checkpoint written by
// transformers (model-fake-gpt2-lmbuddy) and from a tiny Llama that rl saved
// and loaded back, with and without the cache.
func TestGenerateFromCheckpoints(t *testing.T) {
	dirs := map[string]string{}
	m := tinyModel(t, "tiny-llama")
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m.Free()
	dirs["rl tiny-llama"] = dir
	if lm := "../../../shared/data/model-fake-gpt2-lmbuddy"; func() bool { _, err := os.Stat(lm); return err == nil }() {
		dirs["transformers gpt2"] = lm
	} else {
		t.Log("../shared/data not present: only the rl checkpoint")
	}
	for name, d := range dirs {
		m, err := model.Load(d, model.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg := Config{MaxNewTokens: 6, TopP: 1}
		a, err := Generate(m, [][]int{{10, 20, 30}, {40}}, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg.NoCache = true
		b, _ := Generate(m, [][]int{{10, 20, 30}, {40}}, cfg)
		for i := range a {
			if len(a[i].Tokens) != 6 || !equal(a[i].Tokens, b[i].Tokens) {
				t.Errorf("%s prompt %d: cache %v, no cache %v", name, i, a[i].Tokens, b[i].Tokens)
			}
		}
		m.Free()
	}
}
