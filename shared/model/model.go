package model

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/rlsuite/rl/shared/tensor"
)

// Head selects what sits on top of the transformer.
type Head int

const (
	// LMHead projects hidden states to vocabulary logits (…ForCausalLM / GPT2LMHeadModel).
	LMHead Head = iota
	// ScoreHead projects to NumLabels scores with `score.weight` and no bias,
	// as Hugging Face …ForSequenceClassification does; used for reward,
	// value and classifier models.
	ScoreHead
)

// Model is a transformer with its parameters.
type Model struct {
	Config *Config
	Head   Head
	DType  tensor.DType
	Device tensor.Device
	// NoDropout turns the config's dropout off in training as well (TRL's
	// disable_dropout_in_model; the saved config keeps its values).
	NoDropout bool
	// GradientCheckpointing recomputes each decoder layer in the backward
	// pass instead of keeping its activations (checkpointing.go); the
	// trainer calls FinishBackward after each backward.
	GradientCheckpointing bool
	// UnfusedQuant makes a quantised base's projections dequantise their
	// weight as an ordinary autograd op, which keeps the float weight for
	// backward (the path before tensor.QuantLinear; for tests and
	// measurements). The default dequantises again in backward instead.
	UnfusedQuant bool
	// SaveDType is the dtype Save writes the weights in; zero: DType.
	// Load sets it to the source checkpoint's torch_dtype (a bfloat16
	// checkpoint trained with float32 master weights is saved in bfloat16
	// again) unless LoadOptions.DType was given.
	SaveDType tensor.DType
	// Generation is the source's generation_config.json, every field as
	// read (nil: none); Save writes it back unchanged, or a minimal one
	// from the config when nil.
	Generation map[string]any

	params []Param
	byName map[string]*tensor.Tensor
	arch   arch
	lora   *adapters // LoRA adapters (lora.go); nil: none
	ckpts  []*ckpt   // checkpointed forwards awaiting FinishBackward
	// quant maps the placeholder of each 4- or 8-bit base weight (quant.go)
	quant    map[*tensor.Tensor]*quantized
	quantCfg QuantConfig
}

// Param is a named trainable tensor; names are exactly transformers'.
type Param struct {
	Name string
	T    *tensor.Tensor
}

// arch is one family's forward pass over its typed parameter structs.
type arch interface {
	// hidden returns final-norm hidden states (B, T, H).
	hidden(m *Model, in *Input) *tensor.Tensor
	// lmWeight is the (V, H) output projection.
	lmWeight(m *Model) *tensor.Tensor
	// bind builds the typed views from m.byName.
	bind(m *Model) error
}

// Params returns the parameters in a stable order.
func (m *Model) Params() []Param { return m.params }

// Param returns the parameter with the Hugging Face name, or nil.
func (m *Model) Param(name string) *tensor.Tensor { return m.byName[name] }

// NumParams counts parameter elements.
func (m *Model) NumParams() int64 {
	var n int64
	for _, p := range m.params {
		if qw := m.quant[p.T]; qw != nil {
			n += qw.shape[0] * qw.shape[1]
			continue
		}
		n += int64(p.T.Numel())
	}
	return n
}

// Free releases every parameter.
func (m *Model) Free() {
	if m == nil {
		return
	}
	for _, p := range m.params {
		p.T.Free()
	}
	if r, ok := m.arch.(interface{ free() }); ok {
		r.free()
	}
	if m.lora != nil {
		m.lora.free()
		m.lora = nil
	}
	m.freeQuant()
	for _, ck := range m.ckpts {
		ck.free()
	}
	m.ckpts = nil
	m.params = nil
	m.byName = nil
}

// SetRequiresGrad turns gradient tracking on or off for every parameter.
func (m *Model) SetRequiresGrad(b bool) {
	for _, p := range m.params {
		p.T.SetRequiresGrad(b)
	}
}

// prefix is the base-model name prefix of the family (transformer. / model.).
func (c *Config) prefix() string {
	switch c.Family() {
	case GPT2:
		return "transformer."
	case BERT, DistilBERT, RoBERTa:
		return string(c.Family()) + "."
	case DeBERTaV2:
		return "deberta."
	}
	return "model."
}

// paramShapes lists every parameter's name and shape for config c and head h.
func paramShapes(c *Config, h Head) map[string][]int64 {
	H, I, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	s := map[string][]int64{}
	switch c.Family() {
	case GPT2:
		s["transformer.wte.weight"] = []int64{V, H}
		s["transformer.wpe.weight"] = []int64{int64(c.MaxPositions), H}
		for i := 0; i < c.NumLayers; i++ {
			p := fmt.Sprintf("transformer.h.%d.", i)
			s[p+"ln_1.weight"] = []int64{H}
			s[p+"ln_1.bias"] = []int64{H}
			s[p+"attn.c_attn.weight"] = []int64{H, 3 * H}
			s[p+"attn.c_attn.bias"] = []int64{3 * H}
			s[p+"attn.c_proj.weight"] = []int64{H, H}
			s[p+"attn.c_proj.bias"] = []int64{H}
			s[p+"ln_2.weight"] = []int64{H}
			s[p+"ln_2.bias"] = []int64{H}
			s[p+"mlp.c_fc.weight"] = []int64{H, I}
			s[p+"mlp.c_fc.bias"] = []int64{I}
			s[p+"mlp.c_proj.weight"] = []int64{I, H}
			s[p+"mlp.c_proj.bias"] = []int64{H}
		}
		s["transformer.ln_f.weight"] = []int64{H}
		s["transformer.ln_f.bias"] = []int64{H}
	case Llama:
		hd := int64(c.HeadDim)
		q, kv := int64(c.NumHeads)*hd, int64(c.NumKVHeads)*hd
		s["model.embed_tokens.weight"] = []int64{V, H}
		for i := 0; i < c.NumLayers; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			s[p+"input_layernorm.weight"] = []int64{H}
			if c.Fused {
				s[p+"self_attn.qkv_proj.weight"] = []int64{q + 2*kv, H}
			} else {
				s[p+"self_attn.q_proj.weight"] = []int64{q, H}
				s[p+"self_attn.k_proj.weight"] = []int64{kv, H}
				s[p+"self_attn.v_proj.weight"] = []int64{kv, H}
			}
			if c.AttentionBias {
				s[p+"self_attn.q_proj.bias"] = []int64{q}
				s[p+"self_attn.k_proj.bias"] = []int64{kv}
				s[p+"self_attn.v_proj.bias"] = []int64{kv}
			}
			s[p+"self_attn.o_proj.weight"] = []int64{H, q}
			if c.QKNorm {
				s[p+"self_attn.q_norm.weight"] = []int64{hd}
				s[p+"self_attn.k_norm.weight"] = []int64{hd}
			}
			if c.AttentionBias && c.ModelType != "qwen2" {
				s[p+"self_attn.o_proj.bias"] = []int64{H}
			}
			s[p+"post_attention_layernorm.weight"] = []int64{H}
			if c.Gemma {
				s[p+"pre_feedforward_layernorm.weight"] = []int64{H}
				s[p+"post_feedforward_layernorm.weight"] = []int64{H}
			}
			if c.Fused {
				s[p+"mlp.gate_up_proj.weight"] = []int64{2 * I, H}
			} else {
				s[p+"mlp.gate_proj.weight"] = []int64{I, H}
				s[p+"mlp.up_proj.weight"] = []int64{I, H}
			}
			s[p+"mlp.down_proj.weight"] = []int64{H, I}
			if c.MLPBias {
				s[p+"mlp.gate_proj.bias"] = []int64{I}
				s[p+"mlp.up_proj.bias"] = []int64{I}
				s[p+"mlp.down_proj.bias"] = []int64{H}
			}
		}
		s["model.norm.weight"] = []int64{H}
	case BERT, DistilBERT, RoBERTa, DeBERTaV2:
		encoderShapes(c, h, s)
		return s
	}
	switch h {
	case LMHead:
		if !c.TieWordEmbeddings {
			s["lm_head.weight"] = []int64{V, H}
		}
	case ScoreHead:
		s["score.weight"] = []int64{int64(c.NumLabels), H}
	}
	return s
}

// New builds a randomly initialised model (GPT-2 / Llama / BERT
// initialisation: N(0, initializer_range) for matrices and embeddings,
// GPT-2's residual projections scaled by 1/sqrt(2*n_layer), zero biases,
// unit norm weights, an encoder's pad embedding zero)
// from libtorch's global generator (seed it with tensor.ManualSeed). A zero
// dt is Float32.
func New(c *Config, h Head, dt tensor.DType, dev tensor.Device) (m *Model, err error) {
	defer tensor.Recover(&err, "model: new")
	if dt == 0 {
		dt = tensor.Float32
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("model: new: %w", err)
	}
	if c.Encoder() && h != ScoreHead {
		return nil, fmt.Errorf("model: new: %w", errNoLMHead)
	}
	if h == ScoreHead && c.NumLabels <= 0 {
		return nil, fmt.Errorf("model: new: a score head needs num_labels > 0")
	}
	if err := checkMemory(c, h); err != nil {
		return nil, fmt.Errorf("model: new: %w", err)
	}
	tensors := map[string]*tensor.Tensor{}
	shapes := paramShapes(c, h)
	std := c.InitializerRange
	for _, name := range sortedKeys(shapes) {
		shape := shapes[name]
		t := tensor.ZerosOn(shape, tensor.Float32, tensor.CPU).Keep()
		switch {
		case strings.HasSuffix(name, ".bias"):
		case len(shape) == 1 && c.Gemma: // Gemma's norms scale by 1 + weight
		case len(shape) == 1: // norm weights
			t.Fill_(1)
		case c.Family() == GPT2 && strings.HasSuffix(name, "c_proj.weight"):
			t.Normal_(0, std/math.Sqrt(2*float64(c.NumLayers)))
		default:
			t.Normal_(0, std)
		}
		tensors[name] = t
	}
	if c.Encoder() && c.PadTokenID != nil {
		// nn.Embedding(padding_idx=pad_token_id): the pad row starts at zero
		tensor.Tidy(func() {
			tensors[c.prefix()+"embeddings.word_embeddings.weight"].Select(0, int64(*c.PadTokenID)).Fill_(0)
		})
	}
	return assemble(c, h, tensors, nil, dt, dev)
}

// assemble converts tensors to dt/dev, checks names and shapes, and binds
// the family's forward pass. It takes ownership of tensors.
func assemble(c *Config, h Head, tensors map[string]*tensor.Tensor, pre map[string]*quantized, dt tensor.DType, dev tensor.Device) (*Model, error) {
	shapes := paramShapes(c, h)
	var problems []string
	for name, shape := range shapes {
		var got []int64
		if qw := pre[name]; qw != nil {
			got = qw.shape
		} else if t, ok := tensors[name]; ok {
			got = t.Shape()
		} else {
			problems = append(problems, fmt.Sprintf("missing %s %v", name, shape))
			continue
		}
		if !equalShape(got, shape) {
			problems = append(problems, fmt.Sprintf("%s has shape %v, config wants %v", name, got, shape))
		}
	}
	if len(problems) > 0 {
		for _, t := range tensors {
			t.Free()
		}
		for _, qw := range pre {
			qw.free()
		}
		sort.Strings(problems)
		return nil, fmt.Errorf("weights do not match the config: %s", strings.Join(problems, "; "))
	}
	m := &Model{Config: c, Head: h, DType: dt, Device: dev, byName: map[string]*tensor.Tensor{}}
	for _, name := range sortedKeys(shapes) {
		if qw := pre[name]; qw != nil { // quantised as loaded
			ph := m.placeholder(qw)
			m.params = append(m.params, Param{Name: name, T: ph})
			m.byName[name] = ph
			continue
		}
		t := tensors[name]
		if t.DType() != dt || t.Device() != dev {
			n := t.To(dt, dev).Keep()
			t.Free()
			t = n
		}
		m.params = append(m.params, Param{Name: name, T: t})
		m.byName[name] = t
	}
	for name, t := range tensors { // unused extras (e.g. attn.bias buffers)
		if _, ok := shapes[name]; !ok {
			t.Free()
		}
	}
	if err := m.rebind(); err != nil {
		m.Free()
		return nil, err
	}
	return m, nil
}

// rebind builds the family's typed views of m.byName afresh (after Quantize
// replaced weights), freeing the old views' own tensors.
func (m *Model) rebind() error {
	if r, ok := m.arch.(interface{ free() }); ok {
		r.free()
	}
	switch m.Config.Family() {
	case GPT2:
		m.arch = &gpt2{}
	case Llama:
		m.arch = &llama{}
	case BERT, RoBERTa:
		m.arch = &bert{}
	case DistilBERT:
		m.arch = &distilbert{}
	case DeBERTaV2:
		m.arch = &deberta{}
	}
	return m.arch.bind(m)
}

func equalShape(a, b []int64) bool {
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

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// SaveExactly makes Save write the weights in their training dtype until
// the returned func restores SaveDType: checkpoints keep the float32 master
// weights so that a resumed run is bit-exact, while the final model is
// saved in the source's dtype.
func (m *Model) SaveExactly() (restore func()) {
	old := m.SaveDType
	m.SaveDType = m.DType
	return func() { m.SaveDType = old }
}
