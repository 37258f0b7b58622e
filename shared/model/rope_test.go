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
	// dynamic NTK, factor 2, max_position_embeddings 32, at 48 positions
	wantDynamic48 = []float64{1.0, 0.07937005259840997, 0.006299605249474366, 0.0005}
	// yarn factor 4, original 4096: two kept, one mixed, one scaled
	wantYarn = []float64{1.0, 0.1, 0.00625, 0.00025}
	// yarn with beta_fast 8, beta_slow 2, mscale 0.707, mscale_all_dim 1, truncate false
	wantYarnMscale = []float64{1.0, 0.1, 0.008892428802823584, 0.00025}
	// longrope, head_dim 8 x partial_rotary_factor 0.75, original 4 of 32
	wantLongShort = []float64{1.0, 0.030943925557418536, 0.0010772173450159421}
	wantLongLong  = []float64{0.5, 0.01160397208403195, 0.00026930433625398553}
)

const (
	wantYarnAttention       = 1.138629436111989
	wantYarnMscaleAttention = 0.964326914892074
	wantLongAttention       = 1.5811388300841898
)

func approx(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12*math.Abs(want[i]) {
			t.Errorf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// TestRopeTypes: dynamic, yarn and longrope give the inverse frequencies
// and attention factors of transformers' formulas (tools/goldens), at the
// lengths where they change; rope_parameters (transformers 5) reads as
// rope_scaling does, flat or per layer type.
func TestRopeTypes(t *testing.T) {
	parse := func(extra string) *Config {
		t.Helper()
		c, err := ParseConfig([]byte(`{"model_type":"llama","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":8,"max_position_embeddings":32` + extra + `}`))
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		return c
	}
	c := parse(`,"rope_scaling":{"rope_type":"dynamic","factor":2.0}`)
	approx(t, "dynamic within max_position_embeddings", c.RopeInvFreqAt(20), []float64{1, 0.1, 0.01, 0.001})
	approx(t, "dynamic at 48", c.RopeInvFreqAt(48), wantDynamic48)
	if !c.ropeLengthDependent() {
		t.Error("dynamic: want frequencies recomputed per pass")
	}

	c = parse(`,"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":4096}`)
	approx(t, "yarn", c.RopeInvFreq(), wantYarn)
	approx(t, "yarn attention factor", []float64{c.RopeAttentionFactor()}, []float64{wantYarnAttention})
	c = parse(`,"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":4096,"beta_fast":8,"beta_slow":2,"mscale":0.707,"mscale_all_dim":1.0,"truncate":false}`)
	approx(t, "yarn mscale", c.RopeInvFreq(), wantYarnMscale)
	approx(t, "yarn mscale attention factor", []float64{c.RopeAttentionFactor()}, []float64{wantYarnMscaleAttention})
	// without factor: max_position_embeddings / original (transformers 5)
	c = parse(`,"rope_scaling":{"rope_type":"yarn","original_max_position_embeddings":8}`)
	approx(t, "yarn derived factor", []float64{c.RopeAttentionFactor()}, []float64{0.1*math.Log(4) + 1})

	// Phi-4-mini's layout: original_max_position_embeddings at the top level
	ph, err := ParseConfig([]byte(`{"model_type":"phi3","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":8,"max_position_embeddings":32,"original_max_position_embeddings":4,"partial_rotary_factor":0.75,
		"rope_scaling":{"type":"longrope","short_factor":[1.0,1.5,2.0],"long_factor":[2.0,4.0,8.0]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ph.RotaryDim() != 6 {
		t.Errorf("RotaryDim = %d, want 6", ph.RotaryDim())
	}
	approx(t, "longrope within the original length", ph.RopeInvFreqAt(4), wantLongShort)
	approx(t, "longrope at initialisation", ph.RopeInvFreq(), wantLongShort)
	approx(t, "longrope beyond", ph.RopeInvFreqAt(5), wantLongLong)
	approx(t, "longrope attention factor", []float64{ph.RopeAttentionFactor()}, []float64{wantLongAttention})

	// rope_parameters, flat: the same as rope_scaling plus rope_theta
	a := parse(`,"rope_theta":500000,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}`)
	b := parse(`,"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64}`)
	approx(t, "rope_parameters llama3", b.RopeInvFreq(), a.RopeInvFreq())
	if b.RopeTheta != 500000 {
		t.Errorf("rope_parameters.rope_theta: RopeTheta = %g", b.RopeTheta)
	}
	// per layer type (Gemma 3 in transformers 5)
	g, err := ParseConfig([]byte(`{"model_type":"gemma3_text","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":2,"head_dim":8,"intermediate_size":8,"vocab_size":8,"max_position_embeddings":32,
		"rope_parameters":{"full_attention":{"rope_type":"linear","factor":4.0,"rope_theta":10000.0},"sliding_attention":{"rope_type":"default","rope_theta":100.0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	approx(t, "gemma3 rope_parameters.full_attention", g.RopeInvFreq(), wantLinear)
	if g.LocalRopeTheta != 100 {
		t.Errorf("rope_parameters.sliding_attention.rope_theta: LocalRopeTheta = %g, want 100", g.LocalRopeTheta)
	}

	for extra, want := range map[string]string{
		`,"rope_scaling":{"rope_type":"su","factor":4.0}`:                                     `rope_type "su" is not supported`,
		`,"rope_scaling":{"rope_type":"dynamic"}`:                                             "rope_scaling.factor",
		`,"rope_scaling":{"rope_type":"yarn","factor":-1}`:                                    "rope_scaling.factor",
		`,"rope_scaling":{"rope_type":"yarn","factor":2.0,"truncate":"yes"}`:                  "rope_scaling.truncate",
		`,"rope_scaling":{"rope_type":"longrope","short_factor":[1,1],"long_factor":[1,1]}`:   "short_factor has 2 entries: want one per rotary pair, 4",
		`,"rope_scaling":{"rope_type":"longrope","short_factor":[1,1,1,1],"long_factor":"x"}`: "rope_scaling.long_factor",
		`,"rope_parameters":{"rope_type":"linear","rope_theta":10.0}`:                         "rope_parameters.factor",
		`,"rope_parameters":[1]`:                                                              "rope_parameters: want an object",
	} {
		_, err := ParseConfig([]byte(`{"model_type":"llama","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":8,"max_position_embeddings":32` + extra + `}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", extra, err, want)
		}
	}
	if _, err := ParseConfig([]byte(`{"model_type":"phi3","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":1,"intermediate_size":8,"vocab_size":8,"partial_rotary_factor":0.1}`)); err == nil || !strings.Contains(err.Error(), "rotary channels") {
		t.Errorf("partial_rotary_factor 0.1 of head_dim 8: error %v, want the rotary width refused", err)
	}
}

// TestQwenSlidingLayers: Qwen2's use_sliding_window slides the layers from
// max_window_layers on, or those layer_types names; without it nothing slides.
func TestQwenSlidingLayers(t *testing.T) {
	base := `{"model_type":"qwen2","hidden_size":16,"num_attention_heads":2,"num_hidden_layers":3,"intermediate_size":8,"vocab_size":8,"sliding_window":4`
	c, err := ParseConfig([]byte(base + `,"use_sliding_window":true,"max_window_layers":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Sliding, []bool{false, true, true}) || c.SlidingWindow != 4 {
		t.Errorf("max_window_layers 1: Sliding %v window %d", c.Sliding, c.SlidingWindow)
	}
	c, err = ParseConfig([]byte(base + `,"use_sliding_window":true,"layer_types":["sliding_attention","full_attention","full_attention"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Sliding, []bool{true, false, false}) {
		t.Errorf("layer_types: Sliding %v", c.Sliding)
	}
	c, err = ParseConfig([]byte(base + `,"max_window_layers":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sliding != nil || c.SlidingWindow != 0 {
		t.Errorf("use_sliding_window false: Sliding %v window %d, want none", c.Sliding, c.SlidingWindow)
	}
}

// TestLongPositionsNeedNoTables: cos and sin are computed per pass, so a
// config with 2^24 positions builds without any table of that size, and
// positions beyond max_position_embeddings still compute (dynamic NTK's
// use).
func TestLongPositionsNeedNoTables(t *testing.T) {
	cfg, err := ParseConfig(mustJSON(map[string]any{"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "num_hidden_layers": 1,
		"num_attention_heads": 1, "intermediate_size": 8, "max_position_embeddings": 1 << 24, "rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 2.0}}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	tensor.Tidy(func() {
		pos := tensor.FromInt64s([]int64{1<<24 + 5, 1<<24 + 6}, 1, 2)
		out := m.Forward(&Input{IDs: tensor.FromInt64s([]int64{1, 2}, 1, 2), PositionIDs: pos}).Float32s()
		for _, v := range out {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("logits at position 2^24: %v", out)
			}
		}
	})
}

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
		`{"rope_type":"ntk-by-parts","factor":4.0}`: `rope_type "ntk-by-parts" is not supported`,
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
