// Package reference computes transformer forward passes in plain Go, as an
// independent check of the libtorch models.
//
// It implements the forward pass of Hugging Face transformers'
// GPT2LMHeadModel and LlamaForCausalLM (plus the Qwen2-style q/k/v attention
// biases) directly from the published math, in float64, with no caching and
// no batching tricks: every sequence of a batch is computed on its own.
// It is written to be obviously correct, not fast, and is meant for tiny
// models (a couple of layers, width 8-32, a handful of tokens).
//
// # Conventions
//
// Weights use the Hugging Face tensor names and layouts. GPT-2 projections
// are Conv1D modules (y = x·W + b, W stored [in, out]); Llama projections
// are nn.Linear modules (y = x·Wᵀ + b, W stored [out, in]).
//
// Position ids are derived from the attention mask, for both families:
//
//	pos[t] = max(0, sum(mask[0..t]) - 1)
//
// i.e. cumsum(mask)-1 clamped at 0. With left padding the first real token
// gets position 0, as with Hugging Face when position_ids are computed from
// the mask (generate() and TRL do this; HF's generate fills pad slots with 1
// rather than 0, which only changes the outputs at pad positions). GPT-2
// adds wpe[pos]; Llama uses pos as the RoPE position. Calling HF without
// position_ids instead uses 0..T-1, which differs from this whenever there
// is left padding.
//
// Attention: query t may attend to key j iff j <= t (causal) and
// mask[j] == 1 (padding mask on keys). A disallowed score is set to the
// float32 minimum, -math.MaxFloat32 (= torch.finfo(torch.float32).min), as
// in HF's eager attention, which adds that value to the scores (in float32,
// score + min rounds to min, so adding and replacing agree). It is not
// -Inf: a query row with no allowed key at all (a left-pad position, which
// cannot even see itself) therefore gets equal scores everywhere and the
// softmax is uniform over all T keys, so no NaN appears. The outputs at pad
// positions are thus finite but meaningless, and other implementations
// (SDPA, -Inf masks with NaN clean-up, older HF versions) legitimately give
// different values there: compare only at positions whose mask is 1. Pad
// positions never influence the outputs at real positions.
package reference

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Config describes the architecture of a GPT-2 or Llama-family model.
type Config struct {
	ModelType string // "gpt2" or "llama"

	VocabSize int
	Hidden    int
	Layers    int
	Heads     int
	// KVHeads is the number of key/value heads (grouped-query attention,
	// llama only). 0 means Heads, as with HF's num_key_value_heads=None.
	KVHeads int
	// Intermediate is the MLP width. For gpt2, 0 means 4*Hidden, as with
	// HF's n_inner=None; for llama it is required.
	Intermediate int
	// MaxPositions is the number of rows of wpe (gpt2 only).
	MaxPositions int

	Eps       float64 // layer_norm_epsilon (gpt2) / rms_norm_eps (llama)
	RopeTheta float64 // rope_theta (llama)
	// RopeInvFreq, when set, replaces theta^(-2j/headDim) as the rotary
	// inverse frequencies (rope_scaling; the caller computes them from
	// transformers' formulas).
	RopeInvFreq []float64
	// RopeAttentionFactor multiplies cos and sin (yarn, longrope); 0
	// means 1. With RopeInvFreq shorter than HeadDim/2, only the first
	// 2*len(RopeInvFreq) channels of each head rotate (partial rotary).
	RopeAttentionFactor float64
	// TiedHead makes the logits use the token embedding matrix; an
	// lm_head.weight in the weights is then ignored, as in HF.
	TiedHead bool
	// AttentionBias enables biases on q_proj, k_proj and v_proj (Qwen2
	// style; llama only). Biases on o_proj or the MLP are not supported and
	// are reported as errors if present.
	AttentionBias bool
	// HeadDim is the attention head width (llama only); 0 means
	// Hidden/Heads. Qwen3 and Gemma set it apart from Hidden/Heads.
	HeadDim int
	// QKNorm applies RMSNorm with q_norm.weight / k_norm.weight to each
	// head of q and k before RoPE (Qwen3; llama only).
	QKNorm bool
	// SlidingWindow limits each query to the last SlidingWindow keys
	// (Mistral's sliding_window; llama only); 0 means none.
	SlidingWindow int
	// NoScaleAttnWeights is GPT2Config's scale_attn_weights false (scores
	// not divided by sqrt(head_dim)); ScaleAttnByInverseLayerIdx divides
	// layer l's scores by l+1 as well (gpt2 only).
	NoScaleAttnWeights, ScaleAttnByInverseLayerIdx bool
	// Gemma makes a llama model Gemma 2 (transformers' modeling_gemma2):
	// embeddings times sqrt(Hidden) (rounded to float32), RMSNorm scaling
	// by (1 + weight), GeGLU with gelu_pytorch_tanh, norms after attention
	// and before and after the MLP, scores times QueryPreAttnScalar^-0.5
	// then soft-capped tanh(s/AttnSoftcap)*AttnSoftcap before the mask,
	// SlidingWindow on even layers only, logits soft-capped by FinalSoftcap.
	Gemma                                         bool
	QueryPreAttnScalar, AttnSoftcap, FinalSoftcap float64
	// LayerSliding says which layers use SlidingWindow (Gemma 3's
	// layer_types); nil: the even layers (Gemma 2). LocalRopeTheta, when
	// set, is the rotary base of the sliding layers (Gemma 3's
	// rope_local_base_freq); the others use RopeTheta (or RopeInvFreq).
	// With QKNorm, Gemma's q/k norms scale by (1 + weight) too.
	LayerSliding   []bool
	LocalRopeTheta float64
}

// Weights maps Hugging Face tensor names to row-major float32 data with
// shapes.
type Weights map[string]Tensor

// Tensor is a row-major float32 array.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Forward returns logits [B][T][V] for token ids [B][T]. attentionMask
// [B][T] (1 keep, 0 pad) may be nil, meaning all ones. See the package
// documentation for how positions and masking are derived from the mask.
func Forward(cfg Config, w Weights, ids [][]int, attentionMask [][]int) ([][][]float64, error) {
	return run(cfg, w, ids, attentionMask, true)
}

// Hidden returns the hidden states after the final norm (ln_f for gpt2,
// model.norm for llama), [B][T][Hidden]; these are what the LM head and
// score heads are applied to.
func Hidden(cfg Config, w Weights, ids [][]int, attentionMask [][]int) ([][][]float64, error) {
	return run(cfg, w, ids, attentionMask, false)
}

// model is a loaded, validated model.
type model interface {
	// hidden returns the final-norm hidden states [T, Hidden] of one
	// sequence (T >= 1).
	hidden(ids, mask []int) (*mat.Dense, error)
	// head returns the LM head matrix [V, Hidden] (logits = h·headᵀ).
	head() *mat.Dense
}

func run(cfg Config, w Weights, ids [][]int, attentionMask [][]int, logits bool) ([][][]float64, error) {
	d, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	if err := validateWeights(cfg, d, w); err != nil {
		return nil, err
	}
	mask, err := checkInputs(d, ids, attentionMask)
	if err != nil {
		return nil, err
	}
	var m model
	switch cfg.ModelType {
	case "gpt2":
		m = loadGPT2(cfg, d, w)
	case "llama":
		m = loadLlama(cfg, d, w)
	}
	out := make([][][]float64, len(ids))
	for b := range ids {
		if len(ids[b]) == 0 {
			out[b] = [][]float64{}
			continue
		}
		h, err := m.hidden(ids[b], mask[b])
		if err != nil {
			return nil, fmt.Errorf("reference: sequence %d: %w", b, err)
		}
		if logits {
			h = linear(h, m.head(), nil)
			if c := cfg.FinalSoftcap; c > 0 {
				mapElements(h, func(x float64) float64 { return math.Tanh(x/c) * c })
			}
		}
		out[b] = denseRows(h)
	}
	return out, nil
}

// dims holds the resolved sizes of a Config.
type dims struct {
	V, H, L, heads, kvHeads, headDim, I, P int
}

// resolve checks cfg and fills in HF's defaults.
func resolve(cfg Config) (dims, error) {
	d := dims{
		V: cfg.VocabSize, H: cfg.Hidden, L: cfg.Layers,
		heads: cfg.Heads, kvHeads: cfg.KVHeads, I: cfg.Intermediate, P: cfg.MaxPositions,
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("reference: config: "+format, args...))
	}
	if cfg.ModelType != "gpt2" && cfg.ModelType != "llama" {
		bad("ModelType %q: want \"gpt2\" or \"llama\"", cfg.ModelType)
	}
	if d.V <= 0 {
		bad("VocabSize %d must be positive", d.V)
	}
	if d.H <= 0 {
		bad("Hidden %d must be positive", d.H)
	}
	if d.L <= 0 {
		bad("Layers %d must be positive", d.L)
	}
	if d.heads <= 0 {
		bad("Heads %d must be positive", d.heads)
	} else if d.H%d.heads != 0 {
		bad("Hidden %d is not divisible by Heads %d", d.H, d.heads)
	} else {
		d.headDim = d.H / d.heads
		if cfg.HeadDim > 0 {
			d.headDim = cfg.HeadDim
		}
	}
	if !(cfg.Eps > 0) {
		bad("Eps %v must be positive", cfg.Eps)
	}
	switch cfg.ModelType {
	case "gpt2":
		if d.I == 0 {
			d.I = 4 * d.H
		}
		if d.I < 0 {
			bad("Intermediate %d must not be negative", d.I)
		}
		if d.P <= 0 {
			bad("MaxPositions %d must be positive for gpt2", d.P)
		}
		d.kvHeads = d.heads
	case "llama":
		if d.kvHeads == 0 {
			d.kvHeads = d.heads
		}
		if d.kvHeads < 0 {
			bad("KVHeads %d must not be negative", d.kvHeads)
		} else if d.heads > 0 && d.heads%d.kvHeads != 0 {
			bad("Heads %d is not divisible by KVHeads %d", d.heads, d.kvHeads)
		}
		if d.headDim%2 != 0 {
			bad("head dim %d (Hidden/Heads) must be even for RoPE", d.headDim)
		}
		if d.I <= 0 {
			bad("Intermediate %d must be positive for llama", d.I)
		}
		if !(cfg.RopeTheta > 0) {
			bad("RopeTheta %v must be positive for llama", cfg.RopeTheta)
		}
	}
	return d, errors.Join(errs...)
}

// checkInputs validates ids and the mask and returns the mask with nil
// replaced by all ones.
func checkInputs(d dims, ids [][]int, attentionMask [][]int) ([][]int, error) {
	if attentionMask != nil && len(attentionMask) != len(ids) {
		return nil, fmt.Errorf("reference: attention mask has %d rows, ids have %d", len(attentionMask), len(ids))
	}
	mask := make([][]int, len(ids))
	for b, row := range ids {
		if b > 0 && len(row) != len(ids[0]) {
			return nil, fmt.Errorf("reference: ids row %d has length %d, row 0 has %d", b, len(row), len(ids[0]))
		}
		for t, id := range row {
			if id < 0 || id >= d.V {
				return nil, fmt.Errorf("reference: ids[%d][%d] = %d is outside the vocabulary [0, %d)", b, t, id, d.V)
			}
		}
		if attentionMask == nil {
			mask[b] = make([]int, len(row))
			for t := range mask[b] {
				mask[b][t] = 1
			}
			continue
		}
		if len(attentionMask[b]) != len(row) {
			return nil, fmt.Errorf("reference: attention mask row %d has length %d, ids row has %d", b, len(attentionMask[b]), len(row))
		}
		for t, v := range attentionMask[b] {
			if v != 0 && v != 1 {
				return nil, fmt.Errorf("reference: attention mask [%d][%d] = %d, want 0 or 1", b, t, v)
			}
		}
		mask[b] = attentionMask[b]
	}
	return mask, nil
}

// positionIDs returns cumsum(mask)-1 clamped at 0.
func positionIDs(mask []int) []int {
	pos := make([]int, len(mask))
	sum := 0
	for t, m := range mask {
		sum += m
		pos[t] = max(sum-1, 0)
	}
	return pos
}

// tensor kinds, used by RandomWeights.
const (
	kindMatrix = iota // a weight matrix or embedding
	kindBias          // an additive bias
	kindNorm          // a norm's multiplicative weight
)

type weightSpec struct {
	name  string
	shape []int
	kind  int
}

// weightSpecs lists every tensor the model needs, in a fixed order.
func weightSpecs(cfg Config, d dims) []weightSpec {
	var s []weightSpec
	add := func(name string, kind int, shape ...int) {
		s = append(s, weightSpec{name: name, shape: shape, kind: kind})
	}
	switch cfg.ModelType {
	case "gpt2":
		add("transformer.wte.weight", kindMatrix, d.V, d.H)
		add("transformer.wpe.weight", kindMatrix, d.P, d.H)
		for i := 0; i < d.L; i++ {
			p := fmt.Sprintf("transformer.h.%d.", i)
			add(p+"ln_1.weight", kindNorm, d.H)
			add(p+"ln_1.bias", kindBias, d.H)
			add(p+"attn.c_attn.weight", kindMatrix, d.H, 3*d.H)
			add(p+"attn.c_attn.bias", kindBias, 3*d.H)
			add(p+"attn.c_proj.weight", kindMatrix, d.H, d.H)
			add(p+"attn.c_proj.bias", kindBias, d.H)
			add(p+"ln_2.weight", kindNorm, d.H)
			add(p+"ln_2.bias", kindBias, d.H)
			add(p+"mlp.c_fc.weight", kindMatrix, d.H, d.I)
			add(p+"mlp.c_fc.bias", kindBias, d.I)
			add(p+"mlp.c_proj.weight", kindMatrix, d.I, d.H)
			add(p+"mlp.c_proj.bias", kindBias, d.H)
		}
		add("transformer.ln_f.weight", kindNorm, d.H)
		add("transformer.ln_f.bias", kindBias, d.H)
	case "llama":
		q, kv := d.heads*d.headDim, d.kvHeads*d.headDim
		add("model.embed_tokens.weight", kindMatrix, d.V, d.H)
		for i := 0; i < d.L; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			add(p+"input_layernorm.weight", kindNorm, d.H)
			add(p+"self_attn.q_proj.weight", kindMatrix, q, d.H)
			if cfg.AttentionBias {
				add(p+"self_attn.q_proj.bias", kindBias, q)
			}
			add(p+"self_attn.k_proj.weight", kindMatrix, kv, d.H)
			if cfg.AttentionBias {
				add(p+"self_attn.k_proj.bias", kindBias, kv)
			}
			add(p+"self_attn.v_proj.weight", kindMatrix, kv, d.H)
			if cfg.AttentionBias {
				add(p+"self_attn.v_proj.bias", kindBias, kv)
			}
			add(p+"self_attn.o_proj.weight", kindMatrix, d.H, q)
			if cfg.QKNorm {
				add(p+"self_attn.q_norm.weight", kindNorm, d.headDim)
				add(p+"self_attn.k_norm.weight", kindNorm, d.headDim)
			}
			add(p+"post_attention_layernorm.weight", kindNorm, d.H)
			if cfg.Gemma {
				add(p+"pre_feedforward_layernorm.weight", kindNorm, d.H)
				add(p+"post_feedforward_layernorm.weight", kindNorm, d.H)
			}
			add(p+"mlp.gate_proj.weight", kindMatrix, d.I, d.H)
			add(p+"mlp.up_proj.weight", kindMatrix, d.I, d.H)
			add(p+"mlp.down_proj.weight", kindMatrix, d.H, d.I)
		}
		add("model.norm.weight", kindNorm, d.H)
	}
	if !cfg.TiedHead {
		add("lm_head.weight", kindMatrix, d.V, d.H)
	}
	return s
}

// unsupportedNames lists tensors that this reference cannot apply; their
// presence would otherwise be silently ignored and give wrong answers.
func unsupportedNames(cfg Config, d dims) map[string]string {
	u := map[string]string{"lm_head.bias": "an LM head bias is not supported"}
	if cfg.ModelType == "llama" {
		for i := 0; i < d.L; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			if !cfg.AttentionBias {
				for _, n := range []string{"q_proj", "k_proj", "v_proj"} {
					u[p+"self_attn."+n+".bias"] = "present but Config.AttentionBias is false"
				}
			}
			u[p+"self_attn.o_proj.bias"] = "an o_proj bias is not supported (only Qwen2-style q/k/v biases)"
			for _, n := range []string{"gate_proj", "up_proj", "down_proj"} {
				u[p+"mlp."+n+".bias"] = "MLP biases are not supported"
			}
		}
	}
	return u
}

// validateWeights checks that every required tensor is present with the
// expected shape and a matching amount of data, and that no tensor the
// reference would silently ignore is present. Other extra tensors (such as
// buffers found in old checkpoints) are ignored.
func validateWeights(cfg Config, d dims, w Weights) error {
	var errs []error
	for _, s := range weightSpecs(cfg, d) {
		t, ok := w[s.name]
		if !ok {
			errs = append(errs, fmt.Errorf("reference: missing weight %q (expected shape %v)", s.name, s.shape))
			continue
		}
		if !equalShape(t.Shape, s.shape) {
			errs = append(errs, fmt.Errorf("reference: weight %q: expected shape %v, got %v", s.name, s.shape, t.Shape))
			continue
		}
		if n := numElements(s.shape); len(t.Data) != n {
			errs = append(errs, fmt.Errorf("reference: weight %q: shape %v needs %d values, data has %d", s.name, s.shape, n, len(t.Data)))
		}
	}
	unsupported := unsupportedNames(cfg, d)
	for _, name := range slices.Sorted(maps.Keys(unsupported)) {
		if _, ok := w[name]; ok {
			errs = append(errs, fmt.Errorf("reference: weight %q: %s", name, unsupported[name]))
		}
	}
	return errors.Join(errs...)
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func numElements(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// matrix converts a validated 2-D tensor to float64.
func matrix(t Tensor) *mat.Dense {
	return mat.NewDense(t.Shape[0], t.Shape[1], vector(t))
}

// vector converts a validated tensor's data to float64.
func vector(t Tensor) []float64 {
	v := make([]float64, len(t.Data))
	for i, x := range t.Data {
		v[i] = float64(x)
	}
	return v
}

// denseRows copies m into a slice of rows.
func denseRows(m *mat.Dense) [][]float64 {
	r, c := m.Dims()
	out := make([][]float64, r)
	for i := range out {
		out[i] = make([]float64, c)
		mat.Row(out[i], i, m)
	}
	return out
}
