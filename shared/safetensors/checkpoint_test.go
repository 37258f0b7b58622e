package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// sharedData returns ../shared/data relative to the module root, skipping
// the test when it is not present.
func sharedData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("../shared/data not present")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		t.Skip("../shared/data not present")
	}
	return data
}

func TestReadLMBuddyCheckpoint(t *testing.T) {
	modelDir := filepath.Join(sharedData(t), "model-fake-gpt2-lmbuddy")
	path := filepath.Join(modelDir, SingleFileName)
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared/data not present")
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	t.Logf("metadata: %v", f.Metadata)
	for _, name := range f.Names() {
		tn := f.Tensors[name]
		t.Logf("%-40s %-4s %v", name, tn.DType, tn.Shape)
	}
	for _, name := range []string{"transformer.wte.weight", "transformer.h.0.attn.c_attn.weight"} {
		tn, ok := f.Tensors[name]
		if !ok {
			t.Errorf("missing tensor %s", name)
			continue
		}
		if len(tn.Shape) != 2 || tn.Shape[0] <= 0 || tn.Shape[1] <= 0 {
			t.Errorf("%s: shape %v, want 2-D with positive dims", name, tn.Shape)
		}
		vals, err := tn.Float32s()
		if err != nil {
			t.Errorf("%s: Float32s: %v", name, err)
			continue
		}
		for i, v := range vals {
			if v != v || v > 100 || v < -100 {
				t.Errorf("%s[%d] = %g, implausible for a freshly initialised weight", name, i, v)
				break
			}
		}
	}
	if wte := f.Tensors["transformer.wte.weight"]; len(wte.Shape) == 2 && (wte.Shape[0] != 50257 || wte.Shape[1] != 2) {
		t.Errorf("wte shape = %v, want [50257 2] (vocab_size, n_embd in config.json)", wte.Shape)
	}

	// ReadModelDir finds the same single file.
	viaDir, err := ReadModelDir(modelDir)
	if err != nil {
		t.Fatalf("ReadModelDir: %v", err)
	}
	equalFiles(t, viaDir, f)

	// Rewriting gives identical tensors, and in fact the identical file:
	// the writer reproduces the Python writer's layout byte for byte.
	out := filepath.Join(t.TempDir(), SingleFileName)
	if err := WriteFile(out, f); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	again, err := ReadFile(out)
	if err != nil {
		t.Fatalf("ReadFile rewritten: %v", err)
	}
	equalFiles(t, again, f)
	orig, _ := os.ReadFile(path)
	rewritten, _ := os.ReadFile(out)
	if !bytes.Equal(orig, rewritten) {
		t.Errorf("rewritten file differs from the transformers-written original (%d vs %d bytes)", len(rewritten), len(orig))
	}

	// A sharded copy reads back the same.
	shardDir := filepath.Join(t.TempDir(), "sharded")
	if err := WriteSharded(shardDir, f, 200_000); err != nil {
		t.Fatalf("WriteSharded: %v", err)
	}
	sharded, err := ReadModelDir(shardDir)
	if err != nil {
		t.Fatalf("ReadModelDir sharded: %v", err)
	}
	equalFiles(t, sharded, f)
}
