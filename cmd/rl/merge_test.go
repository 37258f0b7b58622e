package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/safetensors"
)

// TestMergeVerify: rl merge writes peft's merged weights (the fixture's
// merged/, computed in PyTorch by tools/goldens/peft_adapter.py) with
// --verify passing; it refuses to overwrite, to merge a non-adapter, and a
// corrupted adapter fails verification or loading with a clear error.
func TestMergeVerify(t *testing.T) {
	fx := filepath.Join("..", "..", "shared", "model", "testdata", "peft", "gpt2")
	out := filepath.Join(t.TempDir(), "merged")
	code, _, stderr := rl(t, "merge", "--model", filepath.Join(fx, "adapter"), "--base-model", filepath.Join(fx, "base"), "-o", out, "--verify")
	if code != 0 {
		t.Fatalf("merge failed: %s", stderr)
	}
	if !strings.Contains(stderr, "verified") {
		t.Errorf("no verification logged: %s", stderr)
	}
	got, err := safetensors.ReadFile(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := safetensors.ReadFile(filepath.Join(fx, "merged", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range want.Names() {
		a, _ := got.Tensors[n].Float32s()
		b, _ := want.Tensors[n].Float32s()
		if len(a) != len(b) {
			t.Fatalf("%s: %d values, want %d", n, len(a), len(b))
		}
		for i := range b {
			if d := a[i] - b[i]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("%s[%d] = %g, peft's merge %g", n, i, a[i], b[i])
			}
		}
	}
	if code, _, stderr := rl(t, "merge", "--model", filepath.Join(fx, "adapter"), "--base-model", filepath.Join(fx, "base"), "-o", out); code == 0 || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("merge over an existing model: code %d, %s", code, stderr)
	}
	if code, _, stderr := rl(t, "merge", "--model", filepath.Join(fx, "base"), "-o", t.TempDir()); code == 0 || !strings.Contains(stderr, "not a peft adapter") {
		t.Errorf("merge of a full model: code %d, %s", code, stderr)
	}
	// an adapter whose base is not here (nor in the Hub cache, offline)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "1")
	bad := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(fx, "adapter", "adapter_config.json"))
	os.WriteFile(filepath.Join(bad, "adapter_config.json"), []byte(strings.Replace(string(b), `"base_model_name_or_path": "base"`, `"base_model_name_or_path": "org/missing"`, 1)), 0o644)
	w, _ := os.ReadFile(filepath.Join(fx, "adapter", "adapter_model.safetensors"))
	os.WriteFile(filepath.Join(bad, "adapter_model.safetensors"), w, 0o644)
	if code, _, stderr := rl(t, "merge", "--model", bad, "-o", t.TempDir()); code == 0 || !strings.Contains(stderr, "--base-model") {
		t.Errorf("merge without its base: code %d, %s", code, stderr)
	}
}

// TestMergeVerifyDora: rl merge --verify of a DoRA adapter written the peft
// way (tools/goldens/peft_adapter.py) passes and writes peft's DoRA merge,
// m / ||W + dW|| * (W + dW), computed in PyTorch.
func TestMergeVerifyDora(t *testing.T) {
	fx := filepath.Join("..", "..", "shared", "model", "testdata", "peft", "llama_dora")
	out := filepath.Join(t.TempDir(), "merged")
	code, _, stderr := rl(t, "merge", "--model", filepath.Join(fx, "adapter"), "--base-model", filepath.Join(fx, "base"), "-o", out, "--verify")
	if code != 0 {
		t.Fatalf("merge failed: %s", stderr)
	}
	if !strings.Contains(stderr, "verified") {
		t.Errorf("no verification logged: %s", stderr)
	}
	got, err := safetensors.ReadFile(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := safetensors.ReadFile(filepath.Join(fx, "merged", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range want.Names() {
		a, _ := got.Tensors[n].Float32s()
		b, _ := want.Tensors[n].Float32s()
		if len(a) != len(b) {
			t.Fatalf("%s: %d values, want %d", n, len(a), len(b))
		}
		for i := range b {
			if d := a[i] - b[i]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("%s[%d] = %g, peft's DoRA merge %g", n, i, a[i], b[i])
			}
		}
	}
}
