package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// Inverse frequencies from transformers' modeling_rope_utils formulas,
// written out in tools/goldens/rope_scaling.py (theta 10000, head_dim 8).
var (
	wantLlama3 = []float64{1.0, 0.013042256043820465, 0.00125, 0.000125} // factor 8, low 1, high 4, original 64
	wantLinear = []float64{0.25, 0.025, 0.0025, 0.00025}                 // factor 4
)

// TestRopeScaling: rope_scaling's llama3 and linear types give
// transformers' inverse frequencies; other types and bad fields are
// refused by name, and the key survives a save.
func TestRopeScaling(t *testing.T) {
	parse := func(rs string) (*Config, error) {
		return ParseConfig([]byte(`{"model_type":"llama","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":8,"rope_scaling":` + rs + `}`))
	}
	for _, c := range []struct {
		rs   string
		want []float64
	}{
		{`{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}`, wantLlama3},
		{`{"type":"linear","factor":4.0}`, wantLinear},
		{`{"rope_type":"default"}`, []float64{1, 0.1, 0.01, 0.001}},
	} {
		cfg, err := parse(c.rs)
		if err != nil {
			t.Fatalf("%s: %v", c.rs, err)
		}
		got := cfg.RopeInvFreq()
		for i := range c.want {
			if math.Abs(got[i]-c.want[i]) > 1e-12*c.want[i] {
				t.Errorf("%s: inv_freq[%d] = %g, want %g", c.rs, i, got[i], c.want[i])
			}
		}
		out, err := cfg.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		json.Unmarshal(out, &back)
		if back["rope_scaling"] == nil {
			t.Errorf("%s: rope_scaling lost on save", c.rs)
		}
	}
	for rs, want := range map[string]string{
		`{"rope_type":"yarn","factor":4.0}`: `rope_type "yarn" is not supported yet`,
		`{"rope_type":"linear"}`:            "rope_scaling.factor",
		`{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0}`: "original_max_position_embeddings",
		`[1]`: "want an object",
	} {
		if _, err := parse(rs); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", rs, err, want)
		}
	}
}

// TestLoadPyTorchBin: a transformers checkpoint with only
// pytorch_model.bin (written by torch.save, tools/goldens/pytorch_bin.py)
// loads; saving writes safetensors, which load back to the same logits.
func TestLoadPyTorchBin(t *testing.T) {
	m, err := Load("../safetensors/testdata/pytorch/gpt2", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatalf("saved without model.safetensors: %v", err)
	}
	m2, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Free()
	tensor.Tidy(func() {
		ids := tensor.FromInt64s([]int64{1, 5, 9, 2}, 1, 4)
		a, b := m.Forward(&Input{IDs: ids}).Float32s(), m2.Forward(&Input{IDs: ids}).Float32s()
		if !slices.Equal(a, b) {
			t.Error("logits differ after the safetensors round trip")
		}
	})
}
