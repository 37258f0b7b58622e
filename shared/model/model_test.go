package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/modeltest/reference"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

func init() { tensor.SetNumThreads(0) }

// writeCheckpoint writes reference weights and a config.json into a temp dir.
func writeCheckpoint(t *testing.T, cfgJSON map[string]any, w reference.Weights) string {
	t.Helper()
	dir := t.TempDir()
	f := &safetensors.File{Tensors: map[string]safetensors.Tensor{}}
	for name, rt := range w {
		shape := make([]int64, len(rt.Shape))
		for i, d := range rt.Shape {
			shape[i] = int64(d)
		}
		st, err := safetensors.FromFloat32s(rt.Data, shape, safetensors.F32)
		if err != nil {
			t.Fatal(err)
		}
		f.Tensors[name] = st
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), f); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfgJSON)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type family struct {
	name string
	ref  reference.Config
	cfg  map[string]any
	// fuse, when set, turns the reference's weights into the family's
	// layout (Phi3's fused projections)
	fuse func(reference.Weights, reference.Config) reference.Weights
}

// fusePhi3 concatenates q/k/v into qkv_proj and gate/up into gate_up_proj,
// rows in that order, as Phi3 stores them.
func fusePhi3(w reference.Weights, c reference.Config) reference.Weights {
	out := reference.Weights{}
	cat := func(names ...string) reference.Tensor {
		var t reference.Tensor
		for _, n := range names {
			rows := 0
			if t.Shape != nil {
				rows = t.Shape[0]
			}
			t.Shape = []int{rows + w[n].Shape[0], w[n].Shape[1]}
			t.Data = append(t.Data, w[n].Data...)
			delete(w, n)
		}
		return t
	}
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		out[p+"self_attn.qkv_proj.weight"] = cat(p+"self_attn.q_proj.weight", p+"self_attn.k_proj.weight", p+"self_attn.v_proj.weight")
		out[p+"mlp.gate_up_proj.weight"] = cat(p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight")
	}
	for n, t := range w {
		out[n] = t
	}
	return out
}

func families4test() []family {
	return []family{
		{"gpt2", reference.Config{ModelType: "gpt2", VocabSize: 23, Hidden: 16, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 16, Eps: 1e-5, TiedHead: true},
			map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 16}, nil},
		// GPT2Config's scale_attn_weights false and scale_attn_by_inverse_layer_idx
		{"gpt2-attn-scaling", reference.Config{ModelType: "gpt2", VocabSize: 23, Hidden: 16, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 16, Eps: 1e-5, TiedHead: true, NoScaleAttnWeights: true, ScaleAttnByInverseLayerIdx: true},
			map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 16, "scale_attn_weights": false, "scale_attn_by_inverse_layer_idx": true}, nil},
		{"gpt2-untied", reference.Config{ModelType: "gpt2", VocabSize: 23, Hidden: 16, Layers: 1, Heads: 2, Intermediate: 24, MaxPositions: 16, Eps: 1e-5},
			map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 1, "n_head": 2, "n_inner": 24, "n_positions": 16, "tie_word_embeddings": false}, nil},
		{"llama-gqa", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, Intermediate: 40, MaxPositions: 32, Eps: 1e-6, RopeTheta: 10000},
			map[string]any{"model_type": "llama", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 40, "max_position_embeddings": 32, "rms_norm_eps": 1e-6}, nil},
		{"qwen2-bias-tied", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 1e6, TiedHead: true, AttentionBias: true},
			map[string]any{"model_type": "qwen2", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": true}, nil},
		// Llama 3.1's rope_scaling (head_dim 8: one frequency kept, one
		// smoothed, two divided by factor) and linear scaling, with the
		// inverse frequencies of transformers' formulas (rope_test.go)
		{"llama3-rope", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, RopeInvFreq: wantLlama3},
			map[string]any{"model_type": "llama", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
				"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, nil},
		// Qwen3: q_norm/k_norm on each head, head_dim apart from hidden/heads
		{"qwen3-qknorm", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 6, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 1e6, TiedHead: true, QKNorm: true},
			map[string]any{"model_type": "qwen3", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": true}, nil},
		// Mistral's sliding window (3 of the 6 tokens), with left padding
		{"mistral-window", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, SlidingWindow: 3},
			map[string]any{"model_type": "mistral", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "sliding_window": 3}, nil},
		// Phi3: fused qkv and gate/up projections, sliding window
		{"phi3-fused", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, SlidingWindow: 4},
			map[string]any{"model_type": "phi3", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "sliding_window": 4}, fusePhi3},
		// Gemma 2: (1+w) norms, sqrt(hidden) embeddings, GeGLU, pre/post
		// norms, query_pre_attn_scalar, both soft-caps, window on even layers
		{"gemma2", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 6, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 10000, TiedHead: true, SlidingWindow: 3,
			Gemma: true, QueryPreAttnScalar: 5, AttnSoftcap: 2, FinalSoftcap: 3},
			map[string]any{"model_type": "gemma2", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
				"sliding_window": 3, "query_pre_attn_scalar": 5, "attn_logit_softcapping": 2.0, "final_logit_softcapping": 3.0, "hidden_activation": "gelu_pytorch_tanh"}, nil},
		// Gemma 3: Gemma 2's layout with (1+w) q/k norms, layer_types, the
		// local rotary base on sliding layers and linear scaling on global ones
		{"gemma3", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 3, Heads: 2, KVHeads: 1, HeadDim: 8, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 10000, RopeInvFreq: wantLinear, TiedHead: true, SlidingWindow: 3,
			Gemma: true, QueryPreAttnScalar: 8, QKNorm: true, LayerSliding: []bool{true, false, true}, LocalRopeTheta: 100},
			map[string]any{"model_type": "gemma3_text", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
				"sliding_window": 3, "query_pre_attn_scalar": 8, "rope_theta": 10000, "rope_local_base_freq": 100, "rope_scaling": map[string]any{"rope_type": "linear", "factor": 4.0},
				"layer_types": []any{"sliding_attention", "full_attention", "sliding_attention"}, "hidden_activation": "gelu_pytorch_tanh"}, nil},
		{"gemma3-pattern", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 2, HeadDim: 8, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 10000, TiedHead: true, SlidingWindow: 2,
			Gemma: true, QueryPreAttnScalar: 8, QKNorm: true, LayerSliding: []bool{true, false}, LocalRopeTheta: 100},
			map[string]any{"model_type": "gemma3_text", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
				"sliding_window": 2, "query_pre_attn_scalar": 8, "rope_theta": 10000, "rope_local_base_freq": 100, "sliding_window_pattern": 2}, nil},
		// yarn: the ramp between scaled and kept frequencies, and the
		// attention factor on cos and sin
		{"yarn-rope", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 1, Heads: 2, KVHeads: 2, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, RopeInvFreq: wantYarn, RopeAttentionFactor: wantYarnAttention},
			map[string]any{"model_type": "llama", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000,
				"rope_scaling": map[string]any{"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}}, nil},
		// dynamic NTK within max_position_embeddings: the default frequencies
		{"dynamic-rope", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 1, Heads: 2, KVHeads: 2, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000},
			map[string]any{"model_type": "llama", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
				"rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 2.0}}, nil},
		// Phi-4-mini: partial rotary (6 of 8 channels) and longrope; the
		// 6-token pass exceeds original_max_position_embeddings 4, so the
		// long factors apply (at 8 the short ones do)
		{"phi4-partial-longrope", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, RopeInvFreq: wantLongLong, RopeAttentionFactor: wantLongAttention},
			map[string]any{"model_type": "phi3", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 32, "original_max_position_embeddings": 4, "rms_norm_eps": 1e-5,
				"partial_rotary_factor": 0.75, "rope_scaling": map[string]any{"type": "longrope", "short_factor": []any{1.0, 1.5, 2.0}, "long_factor": []any{2.0, 4.0, 8.0}}}, fusePhi3},
		{"phi3-longrope-short", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 1, Heads: 2, KVHeads: 1, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, RopeInvFreq: wantLongShort, RopeAttentionFactor: math.Sqrt(1 + math.Log(4)/math.Log(8))},
			map[string]any{"model_type": "phi3", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
				"partial_rotary_factor": 0.75, "rope_scaling": map[string]any{"type": "longrope", "short_factor": []any{1.0, 1.5, 2.0}, "long_factor": []any{2.0, 4.0, 8.0}, "original_max_position_embeddings": 8}}, fusePhi3},
		// Qwen2's use_sliding_window: layers from max_window_layers slide
		{"qwen2-sliding-layers", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1, Intermediate: 24, MaxPositions: 32, Eps: 1e-6, RopeTheta: 1e6, TiedHead: true, AttentionBias: true, SlidingWindow: 2, LayerSliding: []bool{false, true}},
			map[string]any{"model_type": "qwen2", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": true,
				"use_sliding_window": true, "sliding_window": 2, "max_window_layers": 1}, nil},
		{"linear-rope", reference.Config{ModelType: "llama", VocabSize: 29, Hidden: 16, Layers: 1, Heads: 2, KVHeads: 2, Intermediate: 24, MaxPositions: 32, Eps: 1e-5, RopeTheta: 10000, RopeInvFreq: wantLinear},
			map[string]any{"model_type": "llama", "vocab_size": 29, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
				"rope_scaling": map[string]any{"type": "linear", "factor": 4.0}}, nil},
	}
}

func TestForwardMatchesReference(t *testing.T) {
	ids := [][]int{{3, 7, 1, 9, 4, 4}, {0, 0, 5, 2, 8, 11}}
	mask := [][]int{{1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1}} // second row left-padded
	for _, fam := range families4test() {
		t.Run(fam.name, func(t *testing.T) {
			w := reference.RandomWeights(fam.ref, 7, 0.2)
			stored := w
			if fam.fuse != nil {
				stored = fam.fuse(maps.Clone(w), fam.ref)
			}
			dir := writeCheckpoint(t, fam.cfg, stored)
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			want, err := reference.Forward(fam.ref, w, ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			tensor.Tidy(func() {
				flat := []int64{}
				fm := []int64{}
				for b := range ids {
					for i := range ids[b] {
						flat = append(flat, int64(ids[b][i]))
						fm = append(fm, int64(mask[b][i]))
					}
				}
				in := &Input{IDs: tensor.FromInt64s(flat, 2, 6), AttentionMask: tensor.FromInt64s(fm, 2, 6)}
				got = m.Forward(in).Float32s()
			})
			V := fam.ref.VocabSize
			worst := 0.0
			for b := range ids {
				for i := range ids[b] {
					if mask[b][i] == 0 {
						continue // pad positions are meaningless
					}
					for v := 0; v < V; v++ {
						g := float64(got[(b*6+i)*V+v])
						d := math.Abs(g-want[b][i][v]) / (1 + math.Abs(want[b][i][v]))
						worst = math.Max(worst, d)
					}
				}
			}
			t.Logf("max relative difference from the reference: %.3g", worst)
			if worst > 1e-5 {
				t.Errorf("max relative difference from the reference = %.3g, want <= 1e-5", worst)
			}
		})
	}
}

func TestSaveLoadRoundTripBitExact(t *testing.T) {
	for _, fam := range families4test() {
		t.Run(fam.name, func(t *testing.T) {
			tensor.ManualSeed(1)
			cfg, err := ParseConfig(mustJSON(fam.cfg))
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			dir := t.TempDir()
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			m2, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Free()
			if len(m2.Params()) != len(m.Params()) {
				t.Fatalf("%d params after reload, want %d", len(m2.Params()), len(m.Params()))
			}
			for _, p := range m.Params() {
				a, b := p.T.Bytes(), m2.Param(p.Name).Bytes()
				if string(a) != string(b) {
					t.Errorf("%s differs after save/load", p.Name)
				}
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.TieWordEmbeddings {
				if _, ok := f.Tensors["lm_head.weight"]; ok {
					t.Error("tied lm_head.weight was saved; transformers stores it once")
				}
			}
		})
	}
}

// TestHFNamesAndShapes pins the tensor names to transformers' own.
func TestHFNamesAndShapes(t *testing.T) {
	gpt, _ := Preset("tiny", 100)
	ll, _ := Preset("tiny-llama", 100)
	want := map[string][]int64{
		"transformer.h.0.attn.c_attn.weight": {256, 768},
		"transformer.h.3.mlp.c_proj.weight":  {1024, 256},
		"transformer.wte.weight":             {100, 256},
		"transformer.wpe.weight":             {512, 256},
		"transformer.ln_f.bias":              {256},
	}
	got := paramShapes(gpt, LMHead)
	for n, s := range want {
		if !equalShape(got[n], s) {
			t.Errorf("gpt2 %s = %v, want %v", n, got[n], s)
		}
	}
	if len(got) != 4*12+4 {
		t.Errorf("gpt2 tiny has %d tensors, want %d", len(got), 4*12+4)
	}
	wantL := map[string][]int64{
		"model.layers.0.self_attn.q_proj.weight": {256, 256},
		"model.layers.0.self_attn.k_proj.weight": {128, 256},
		"model.layers.1.mlp.gate_proj.weight":    {688, 256},
		"model.embed_tokens.weight":              {100, 256},
		"model.norm.weight":                      {256},
	}
	gotL := paramShapes(ll, LMHead)
	for n, s := range wantL {
		if !equalShape(gotL[n], s) {
			t.Errorf("llama %s = %v, want %v", n, gotL[n], s)
		}
	}
	ll.NumLabels = 1
	if s := paramShapes(ll, ScoreHead)["score.weight"]; !equalShape(s, []int64{1, 256}) {
		t.Errorf("score.weight = %v, want [1 256]", s)
	}
}

func TestLoadTransformersCheckpoint(t *testing.T) {
	dir := "../../../shared/data/model-fake-gpt2-lmbuddy"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("../shared/data not present")
	}
	m, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if m.Config.VocabSize != 50257 || m.Config.HiddenSize != 2 {
		t.Errorf("config = %+v", m.Config)
	}
	out := t.TempDir()
	if err := m.Save(out); err != nil {
		t.Fatal(err)
	}
	orig, _ := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	saved, _ := safetensors.ReadFile(filepath.Join(out, "model.safetensors"))
	if len(orig.Tensors) != len(saved.Tensors) {
		t.Errorf("saved %d tensors, transformers wrote %d", len(saved.Tensors), len(orig.Tensors))
	}
	for name, a := range orig.Tensors {
		b, ok := saved.Tensors[name]
		if !ok || string(a.Data) != string(b.Data) || !equalShape(a.Shape, b.Shape) {
			t.Errorf("%s not bit-exact after load/save", name)
		}
	}
	// The base model without an LM head (GPT2Model, names without prefix) loads too.
	base := "../../../shared/data/model-tiny-gpt2-toyvocab-lmbuddy"
	if m2, err := Load(base, LoadOptions{Head: ScoreHead}); err != nil {
		t.Errorf("load GPT2Model checkpoint as a score model: %v", err)
	} else {
		m2.Free()
	}
	// As a score model: lm_head dropped, score.weight initialised, saved as HF does.
	s, err := Load(dir, LoadOptions{Head: ScoreHead, NumLabels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	sd := t.TempDir()
	if err := s.Save(sd); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(filepath.Join(sd, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NumLabels != 1 || c.Architectures[0] != "GPT2ForSequenceClassification" {
		t.Errorf("score config: num_labels %d architectures %v", c.NumLabels, c.Architectures)
	}
}

func TestBadCheckpoints(t *testing.T) {
	fam := families4test()[0]
	w := reference.RandomWeights(fam.ref, 1, 0.1)
	cases := []struct {
		name   string
		mutate func(dir string)
		want   []string
	}{
		{"missing safetensors", func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) }, []string{"model.safetensors"}},
		{"corrupt safetensors", func(d string) { os.WriteFile(filepath.Join(d, "model.safetensors"), []byte("garbage!garbage!"), 0o644) }, []string{"model.safetensors"}},
		{"missing config", func(d string) { os.Remove(filepath.Join(d, "config.json")) }, []string{"config.json"}},
		{"unknown model_type", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), []byte(`{"model_type":"t5","vocab_size":3}`), 0o644)
		}, []string{"config.json", "unknown model_type", "t5"}},
		{"wrong shape", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 8}), 0o644)
		}, []string{"transformer.wpe.weight", "[16 16]", "[8 16]"}},
		// issue 11, item 8: huge sizes are errors, not a hang or a C++ allocation failure.
		{"n_layer 1e18", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 1e18, "n_head": 4, "n_positions": 16}), 0o644)
		}, []string{"config.json", "n_layer must be in [1, 4096], got 1000000000000000000"}},
		{"n_embd 100000", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 100000, "n_layer": 2, "n_head": 4, "n_positions": 16}), 0o644)
		}, []string{"config.json"}},
		// issue 11, item 9: weights of another size are not silently dropped.
		{"fewer layers in config", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 1, "n_head": 4, "n_positions": 16}), 0o644)
		}, []string{"transformer.h.1.ln_1.weight is in the weights but not in a model of config.json's sizes"}},
		// issue 11, item 15: NaN weights and a negative epsilon are errors naming the tensor or key.
		{"NaN weight", func(d string) {
			path := filepath.Join(d, "model.safetensors")
			f, err := safetensors.ReadFile(path)
			if err != nil {
				panic(err)
			}
			v, _ := f.Tensors["transformer.h.1.mlp.c_fc.bias"].Float32s()
			v[3] = float32(math.NaN())
			f.Tensors["transformer.h.1.mlp.c_fc.bias"], _ = safetensors.FromFloat32s(v, []int64{int64(len(v))}, safetensors.F32)
			if err := safetensors.WriteFile(path, f); err != nil {
				panic(err)
			}
		}, []string{"transformer.h.1.mlp.c_fc.bias", "non-finite", "element 3"}},
		{"negative layer_norm_epsilon", func(d string) {
			os.WriteFile(filepath.Join(d, "config.json"), mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 23, "n_embd": 16, "n_layer": 2, "n_head": 4, "n_positions": 16, "layer_norm_epsilon": -1e-5}), 0o644)
		}, []string{"layer_norm_epsilon must be a finite number > 0, got -1e-05"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeCheckpoint(t, fam.cfg, w)
			c.mutate(dir)
			m, err := Load(dir, LoadOptions{})
			if err == nil {
				m.Free()
				t.Fatal("Load succeeded, want an error")
			}
			if strings.Contains(err.Error(), "libtorch") {
				t.Errorf("error %q comes from libtorch, want a check before allocating", err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if c.name == "unknown model_type" && !errors.Is(err, ErrUnknownModelType) {
				t.Errorf("error %v is not ErrUnknownModelType", err)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestScoreIndex checks transformers' pooling rule: the last token that is
// not pad_token_id.
func TestScoreIndex(t *testing.T) {
	pad := 0
	withPad := &Config{PadTokenID: &pad}
	for _, c := range []struct {
		cfg  *Config
		row  []int64
		want int
	}{
		{&Config{}, []int64{5, 6, 0}, 2},  // no pad_token_id: the last token
		{withPad, []int64{5, 6, 0, 0}, 1}, // trailing pads skipped
		{withPad, []int64{5, 0, 6}, 2},    // a pad inside is not the end
		{withPad, []int64{0, 0}, 0},       // pads only: position 0
		{withPad, []int64{7}, 0},          // one real token
	} {
		row := c.row
		if got := c.cfg.ScoreIndex(len(row)-1, func(i int) int64 { return row[i] }); got != c.want {
			t.Errorf("ScoreIndex(%v, pad %v) = %d, want %d", row, c.cfg.PadTokenID, got, c.want)
		}
	}
}

// TestDropout: the config's dropout applies in training mode only: eval
// mode (and NoDropout, TRL's disable_dropout) give the same logits as a
// model without dropout; training mode differs from it, by a different
// mask each call; with p = 0 training mode changes nothing. GPT2Config's
// default is 0.1 for each of embd_pdrop, attn_pdrop, resid_pdrop.
func TestDropout(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama"} {
		cfg, _ := Preset(preset, 64)
		cfg.EmbdDropout, cfg.AttnDropout, cfg.ResidDropout = 0.3, 0.3, 0.3
		tensor.ManualSeed(1)
		m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		tensor.Tidy(func() {
			ids := tensor.FromInt64s([]int64{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4)
			run := func(train bool) []float32 { return m.Forward(&Input{IDs: ids, Train: train}).Float32s() }
			eval := run(false)
			zero := *m.Config
			zero.EmbdDropout, zero.AttnDropout, zero.ResidDropout = 0, 0, 0
			keep := m.Config
			m.Config = &zero
			plain, plainTrain := run(false), run(true)
			m.Config = keep
			a, b := run(true), run(true)
			m.NoDropout = true
			off := run(true)
			m.NoDropout = false
			if !slices.Equal(eval, plain) || !slices.Equal(off, plain) || !slices.Equal(plainTrain, plain) {
				t.Errorf("%s: eval mode, NoDropout or p = 0 changed the logits", preset)
			}
			if slices.Equal(a, plain) || slices.Equal(a, b) {
				t.Errorf("%s: training mode did not drop, or dropped the same twice", preset)
			}
		})
		m.Free()
	}
	c, err := ParseConfig([]byte(`{"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 10}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbdDropout != 0.1 || c.AttnDropout != 0.1 || c.ResidDropout != 0.1 {
		t.Errorf("gpt2 defaults %g %g %g, want 0.1 each", c.EmbdDropout, c.AttnDropout, c.ResidDropout)
	}
}

// TestNewRefusesHugeSizes: a config too large for the machine's memory is an
// error before anything is allocated (issue 11, item 8).
func TestNewRefusesHugeSizes(t *testing.T) {
	cfg, err := ParseConfig(mustJSON(map[string]any{"model_type": "gpt2", "vocab_size": 50000, "n_embd": 1 << 20, "n_layer": 4000, "n_head": 16, "n_positions": 16}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
	if err == nil {
		m.Free()
		t.Fatal("New built a model of 5e16 parameters")
	}
	if !strings.Contains(err.Error(), "memory") || strings.Contains(err.Error(), "libtorch") {
		t.Errorf("error %q: want a memory check naming the sizes", err)
	}
}

// TestParamDType: float16, listed by ParseDType, is refused with a reason
// instead of failing later in LayerNorm.
func TestParamDType(t *testing.T) {
	for s, want := range map[string]tensor.DType{"float32": tensor.Float32, "bf16": tensor.BFloat16} {
		if got, err := ParamDType(s); err != nil || got != want {
			t.Errorf("ParamDType(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"float16", "fp16", "float64", "int8"} {
		if _, err := ParamDType(s); err == nil || !strings.Contains(err.Error(), "bfloat16") {
			t.Errorf("ParamDType(%q) = %v, want a refusal naming bfloat16", s, err)
		}
	}
}
