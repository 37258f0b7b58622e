package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestLoadWeightsExact: resuming into another model size, a tensor whose
// shape only broadcasts, or NaN weights are errors naming the tensor and
// both shapes, not partial loads (issue 11, items 9 and 15).
func TestLoadWeightsExact(t *testing.T) {
	src := tinyLM(t) // 2 layers, width 32
	defer src.Free()
	dir := t.TempDir()
	if err := src.Save(dir); err != nil {
		t.Fatal(err)
	}
	small := func() *model.Model {
		cfg := src.Config.Clone()
		cfg.NumLayers = 1
		tensor.ManualSeed(5)
		m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := small()
	defer m.Free()
	err := LoadWeights(m, dir)
	if err == nil || !strings.Contains(err.Error(), "has transformer.h.1.attn.c_attn.weight [32 96], which the model lacks") {
		t.Errorf("2-layer checkpoint into a 1-layer model: %v", err)
	}

	// A [1] tensor where the model has [32]: no broadcast.
	rewrite := func(name string, tensor func(safetensors.Tensor) safetensors.Tensor) string {
		d := t.TempDir()
		if err := src.Save(d); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(d, "model.safetensors")
		f, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Tensors[name] = tensor(f.Tensors[name])
		if err := safetensors.WriteFile(path, f); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := rewrite("transformer.ln_f.bias", func(safetensors.Tensor) safetensors.Tensor {
		x, _ := safetensors.FromFloat32s([]float32{0.5}, []int64{1}, safetensors.F32)
		return x
	})
	m2 := tinyLM(t)
	defer m2.Free()
	err = LoadWeights(m2, d)
	if err == nil || !strings.Contains(err.Error(), "transformer.ln_f.bias has shape [1], the model's is [32]") {
		t.Errorf("shape [1] into [32]: %v", err)
	}
	d = rewrite("transformer.h.0.ln_1.weight", func(x safetensors.Tensor) safetensors.Tensor {
		v, _ := x.Float32s()
		v[7] = float32(math.Inf(1))
		y, _ := safetensors.FromFloat32s(v, x.Shape, safetensors.F32)
		return y
	})
	err = LoadWeights(m2, d)
	if err == nil || !strings.Contains(err.Error(), "transformer.h.0.ln_1.weight holds a non-finite value") {
		t.Errorf("Inf weight: %v", err)
	}
	if err := LoadWeights(m2, dir); err != nil {
		t.Errorf("matching checkpoint: %v", err)
	}
}
