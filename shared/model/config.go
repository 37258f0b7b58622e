// Package model implements the transformers rl trains on libtorch (the
// GPT-2 and Llama decoder families, with a language-model head or a score
// head; the BERT, DistilBERT, RoBERTa and DeBERTa-v2 encoders, with their
// sequence-classification heads), built from and saved as Hugging Face
// checkpoints (config.json + model.safetensors) with transformers' tensor
// names.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ErrUnknownModelType is returned for a config.json whose model_type rl cannot build.
var ErrUnknownModelType = errors.New("model: unknown model_type")

// Family is the architecture family behind a model_type.
type Family string

const (
	GPT2  Family = "gpt2"
	Llama Family = "llama"
	// Encoders (bidirectional, post-LN, absolute positions; encoder.go).
	BERT       Family = "bert"
	DistilBERT Family = "distilbert"
	RoBERTa    Family = "roberta"
	// DeBERTaV2 is DeBERTa-v2 and -v3 (disentangled relative attention; deberta.go).
	DeBERTaV2 Family = "deberta-v2"
)

// families maps Hugging Face model_type values to the family that builds them.
var families = map[string]Family{
	"gpt2":    GPT2,
	"llama":   Llama,
	"mistral": Llama,
	"qwen2":   Llama,
	"qwen3":   Llama,
	"phi3":    Llama,
	"gemma2":  Llama,
	// Gemma 3's text model (Gemma3ForCausalLM)
	"gemma3_text": Llama,
	"bert":        BERT,
	"distilbert":  DistilBERT,
	"roberta":     RoBERTa,
	"xlm-roberta": RoBERTa,
	"deberta-v2":  DeBERTaV2,
}

// Config is a Hugging Face config.json for the supported families. Fields
// carry one meaning across families; Raw keeps every key of the file so that
// saving writes back what rl does not interpret.
type Config struct {
	ModelType         string   // model_type
	Architectures     []string // architectures
	VocabSize         int      // vocab_size
	HiddenSize        int      // n_embd / hidden_size
	NumLayers         int      // n_layer / num_hidden_layers
	NumHeads          int      // n_head / num_attention_heads
	NumKVHeads        int      // num_key_value_heads (llama); = NumHeads for gpt2
	IntermediateSize  int      // n_inner (null: 4*n_embd) / intermediate_size
	MaxPositions      int      // n_positions / max_position_embeddings
	NormEps           float64  // layer_norm_epsilon / rms_norm_eps
	RopeTheta         float64  // rope_theta (llama); default 10000
	HeadDim           int      // head_dim; default hidden_size / num_heads
	TieWordEmbeddings bool     // tie_word_embeddings; gpt2 default true, llama false
	AttentionBias     bool     // q/k/v biases (attention_bias; always for qwen2)
	QKNorm            bool     // q_norm/k_norm RMSNorm on each head before RoPE (qwen3)
	Fused             bool     // fused qkv_proj and gate_up_proj (phi3)
	// Gemma 2: embeddings times sqrt(hidden), RMSNorm with (1 + weight),
	// GeGLU (gelu_pytorch_tanh), norms after attention and around the MLP,
	// scores scaled by query_pre_attn_scalar^-0.5 and soft-capped
	// (attn_logit_softcapping), the sliding window on even layers, final
	// logits soft-capped (final_logit_softcapping).
	Gemma                                   bool
	QueryPreAttnScalar                      float64
	AttnLogitSoftcapping, FinalLogitSoftcap float64 // 0: none
	// Sliding lists the layers with the sliding window (Gemma: layer_types
	// "sliding_attention"); nil means every layer when SlidingWindow > 0.
	Sliding []bool
	// LocalRopeTheta is the rotary base of sliding layers (Gemma 3's
	// rope_local_base_freq, unscaled); 0: the global rope_theta and scaling.
	LocalRopeTheta float64
	SlidingWindow  int // sliding_window (mistral): a query sees the last this-many keys; 0: all
	// GPT-2's attention scaling: scale_attn_weights (default true: divide
	// the scores by sqrt(head_dim)) and scale_attn_by_inverse_layer_idx
	// (default false: also divide by layer_idx + 1).
	ScaleAttnWeights, ScaleAttnByInverseLayerIdx bool
	MLPBias                                      bool    // mlp_bias (llama)
	InitializerRange                             float64 // initializer_range; default 0.02
	BOSTokenID                                   *int    // bos_token_id
	EOSTokenID                                   *int    // eos_token_id; the first one when the file has a list
	EOSTokenIDs                                  []int   // eos_token_id as a list (Llama-3.1: [128001, 128008, 128009]); nil when unset
	PadTokenID                                   *int    // pad_token_id
	NumLabels                                    int     // num_labels (score heads); 0 when unset
	ID2Label                                     map[int]string
	TorchDtype                                   string // torch_dtype (or dtype, as transformers >= 4.56 writes it) as written
	// Dropout probabilities applied in training (Input.Train): GPT-2's
	// embd_pdrop, attn_pdrop, resid_pdrop (default 0.1 each, GPT2Config's);
	// Llama's attention_dropout on the attention probabilities (default 0).
	EmbdDropout, AttnDropout, ResidDropout float64
	// RopeScaling is rope_scaling (nil: none): the types of transformers'
	// modeling_rope_utils (linear, dynamic, yarn, longrope, llama3); read
	// from rope_parameters too, transformers 5's name (rope.go).
	RopeScaling *RopeScaling
	// PartialRotaryFactor is partial_rotary_factor (phi3; default 1): RoPE
	// rotates the first int(head_dim * factor) channels of each head.
	PartialRotaryFactor float64
	// Encoders (encoder.go): type_vocab_size (BERT 2, RoBERTa 1;
	// DistilBERT has no token types), hidden_act (gelu), and the dropout
	// of the sequence-classification head (classifier_dropout, null: the
	// hidden dropout; DistilBERT's seq_classif_dropout, default 0.2).
	TypeVocabSize     int
	HiddenAct         string
	ClassifierDropout float64
	// ProblemType is problem_type ("" until set): single_label_classification
	// (cross-entropy), multi_label_classification (BCE with logits) or
	// regression (MSE), as transformers' …ForSequenceClassification
	// (ClassificationLoss).
	ProblemType string
	// DeBERTa holds DebertaV2Config's own fields (deberta.go); zero for
	// the other families. Its head size (attention_head_size) is HeadDim.
	DeBERTa DebertaOptions

	Raw map[string]any // every key read from the file
}

// Family reports the architecture family of c.ModelType.
func (c *Config) Family() Family { return families[c.ModelType] }

// KVGroups is num_heads / num_kv_heads.
func (c *Config) KVGroups() int { return c.NumHeads / c.NumKVHeads }

// ReadConfig reads a config.json file.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: read config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes config.json bytes.
func ParseConfig(b []byte) (*Config, error) {
	raw := map[string]any{}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	r := reader{raw: raw}
	c := &Config{Raw: raw}
	c.ModelType = r.str("model_type")
	if c.ModelType == "" {
		return nil, fmt.Errorf("%w: no model_type field", ErrUnknownModelType)
	}
	fam, ok := families[c.ModelType]
	if !ok {
		known := make([]string, 0, len(families))
		for k := range families {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("%w %q (rl builds %v)", ErrUnknownModelType, c.ModelType, known)
	}
	for _, a := range r.list("architectures") {
		if s, ok := a.(string); ok {
			c.Architectures = append(c.Architectures, s)
		}
	}
	c.VocabSize = r.int("vocab_size", 0)
	c.InitializerRange = r.float("initializer_range", 0.02)
	c.BOSTokenID = r.intPtr("bos_token_id")
	c.EOSTokenID = r.intPtr("eos_token_id")
	c.EOSTokenIDs = r.intList("eos_token_id")
	c.PadTokenID = r.intPtr("pad_token_id")
	c.TorchDtype = r.str("torch_dtype")
	if d := r.str("dtype"); d != "" && c.TorchDtype == "" {
		c.TorchDtype = d
	}
	switch fam {
	case GPT2:
		c.HiddenSize = r.int("n_embd", 768)
		c.NumLayers = r.int("n_layer", 12)
		c.NumHeads = r.int("n_head", 12)
		c.NumKVHeads = c.NumHeads
		c.IntermediateSize = r.int("n_inner", 4*c.HiddenSize)
		c.MaxPositions = r.int("n_positions", 1024)
		c.NormEps = r.float("layer_norm_epsilon", 1e-5)
		c.TieWordEmbeddings = r.bool("tie_word_embeddings", true)
		c.AttentionBias = true
		c.ScaleAttnWeights = r.bool("scale_attn_weights", true)
		c.ScaleAttnByInverseLayerIdx = r.bool("scale_attn_by_inverse_layer_idx", false)
		c.EmbdDropout = r.float("embd_pdrop", 0.1)
		c.AttnDropout = r.float("attn_pdrop", 0.1)
		c.ResidDropout = r.float("resid_pdrop", 0.1)
		if act := r.str("activation_function"); act != "" && act != "gelu_new" && act != "gelu_pytorch_tanh" {
			return nil, fmt.Errorf("activation_function %q: rl's gpt2 supports gelu_new", act)
		}
	case Llama:
		c.HiddenSize = r.int("hidden_size", 4096)
		c.NumLayers = r.int("num_hidden_layers", 32)
		c.NumHeads = r.int("num_attention_heads", 32)
		c.NumKVHeads = r.int("num_key_value_heads", c.NumHeads)
		c.IntermediateSize = r.int("intermediate_size", 11008)
		c.MaxPositions = r.int("max_position_embeddings", 2048)
		c.NormEps = r.float("rms_norm_eps", 1e-6)
		c.RopeTheta = r.float("rope_theta", 10000)
		c.TieWordEmbeddings = r.bool("tie_word_embeddings", false)
		c.AttentionBias = r.bool("attention_bias", c.ModelType == "qwen2")
		c.MLPBias = r.bool("mlp_bias", false)
		c.QKNorm = c.ModelType == "qwen3"
		if c.ModelType == "mistral" || c.ModelType == "phi3" {
			c.SlidingWindow = r.int("sliding_window", 0) // null: none
		}
		if c.ModelType == "phi3" {
			// Phi3: fused projections, dropout after each residual branch
			c.Fused = true
			c.ResidDropout = r.float("resid_pdrop", 0)
			// Phi-4-mini rotates the first partial_rotary_factor of each head
			c.PartialRotaryFactor = r.float("partial_rotary_factor", 1)
		}
		if c.ModelType == "qwen2" || c.ModelType == "qwen3" {
			if err := c.qwenLayers(r, raw); err != nil {
				return nil, err
			}
		}
		c.AttnDropout = r.float("attention_dropout", 0)
		if c.ModelType == "gemma2" || c.ModelType == "gemma3_text" {
			c.Gemma = true
			c.TieWordEmbeddings = r.bool("tie_word_embeddings", true)
			c.SlidingWindow = r.int("sliding_window", 4096)
			c.QueryPreAttnScalar = r.float("query_pre_attn_scalar", 256)
			c.AttnLogitSoftcapping = r.float("attn_logit_softcapping", 0)
			c.FinalLogitSoftcap = r.float("final_logit_softcapping", 0)
			if err := c.gemmaLayers(r, raw); err != nil {
				return nil, err
			}
			for _, key := range []string{"hidden_activation", "hidden_act"} {
				if act := r.str(key); act != "" && act != "gelu_pytorch_tanh" {
					return nil, fmt.Errorf("%s %q: rl's gemma2 supports gelu_pytorch_tanh", key, act)
				}
			}
		} else if act := r.str("hidden_act"); act != "" && act != "silu" {
			return nil, fmt.Errorf("hidden_act %q: rl's llama supports silu", act)
		}
		if err := c.parseRope(raw); err != nil {
			return nil, err
		}
	case BERT, DistilBERT, RoBERTa:
		if err := c.parseEncoder(&r); err != nil {
			return nil, err
		}
	case DeBERTaV2:
		if err := c.parseDeberta(&r); err != nil {
			return nil, err
		}
	}
	c.ProblemType = r.str("problem_type")
	c.HeadDim = r.int("head_dim", c.HeadDim)
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	c.NumLabels = r.int("num_labels", 0)
	if m, ok := raw["id2label"].(map[string]any); ok {
		c.ID2Label = map[int]string{}
		for k, v := range m {
			i, err := strconv.Atoi(k)
			if err != nil {
				return nil, fmt.Errorf("id2label: key %q is not an integer", k)
			}
			s, _ := v.(string)
			c.ID2Label[i] = s
		}
		if c.NumLabels == 0 {
			c.NumLabels = len(c.ID2Label)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, c.Validate()
}

// Validate checks the sizes for consistency and range, naming config.json's
// keys.
func (c *Config) Validate() error {
	var errs []error
	keys := map[string]string{"hidden": "hidden_size", "layers": "num_hidden_layers", "heads": "num_attention_heads",
		"kv": "num_key_value_heads", "inter": "intermediate_size", "pos": "max_position_embeddings", "eps": "rms_norm_eps"}
	switch c.Family() {
	case GPT2:
		keys = map[string]string{"hidden": "n_embd", "layers": "n_layer", "heads": "n_head",
			"kv": "n_head", "inter": "n_inner", "pos": "n_positions", "eps": "layer_norm_epsilon"}
	case BERT, RoBERTa, DeBERTaV2:
		keys["kv"], keys["eps"] = keys["heads"], "layer_norm_eps"
	case DistilBERT:
		keys = map[string]string{"hidden": "dim", "layers": "n_layers", "heads": "n_heads",
			"kv": "n_heads", "inter": "hidden_dim", "pos": "max_position_embeddings", "eps": "layer_norm_eps"}
	}
	size := func(name string, v, max int) {
		if v <= 0 || v > max {
			errs = append(errs, fmt.Errorf("%s must be in [1, %d], got %d", name, max, v))
		}
	}
	size("vocab_size", c.VocabSize, maxDim)
	size(keys["hidden"], c.HiddenSize, maxDim)
	size(keys["layers"], c.NumLayers, maxLayers)
	size(keys["heads"], c.NumHeads, maxDim)
	if keys["kv"] != keys["heads"] {
		size(keys["kv"], c.NumKVHeads, maxDim)
	}
	size(keys["inter"], c.IntermediateSize, maxDim)
	size(keys["pos"], c.MaxPositions, maxDim)
	if c.HeadDim != 0 || c.Family() == Llama {
		size("head_dim", c.HeadDim, maxDim)
	}
	if !(c.NormEps > 0) || math.IsInf(c.NormEps, 0) {
		errs = append(errs, fmt.Errorf("%s must be a finite number > 0, got %g", keys["eps"], c.NormEps))
	}
	if c.Family() == Llama && (!(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0)) {
		errs = append(errs, fmt.Errorf("rope_theta must be a finite number > 0, got %g", c.RopeTheta))
	}
	if !(c.InitializerRange >= 0) || math.IsInf(c.InitializerRange, 0) {
		errs = append(errs, fmt.Errorf("initializer_range must be a finite number >= 0, got %g", c.InitializerRange))
	}
	if c.NumLabels < 0 || c.NumLabels > maxDim {
		errs = append(errs, fmt.Errorf("num_labels must be in [0, %d], got %d", maxDim, c.NumLabels))
	}
	if c.NumHeads > 0 && c.NumKVHeads > 0 && c.NumHeads%c.NumKVHeads != 0 {
		errs = append(errs, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads))
	}
	if (c.Family() == GPT2 || c.Encoder()) && c.NumHeads > 0 && c.HiddenSize%c.NumHeads != 0 {
		errs = append(errs, fmt.Errorf("%s %d is not a multiple of %s %d", keys["hidden"], c.HiddenSize, keys["heads"], c.NumHeads))
	}
	if c.Encoder() {
		errs = append(errs, c.validateEncoder()...)
	}
	if c.Family() == DeBERTaV2 {
		errs = append(errs, c.validateDeberta()...)
	}
	switch c.ProblemType {
	case "", SingleLabel, MultiLabel, Regression:
	default:
		errs = append(errs, fmt.Errorf("problem_type %q: want %s, %s or %s", c.ProblemType, SingleLabel, MultiLabel, Regression))
	}
	if c.HeadDim%2 != 0 && c.Family() == Llama {
		errs = append(errs, fmt.Errorf("head_dim %d must be even for rotary embeddings", c.HeadDim))
	}
	if c.Family() == Llama {
		errs = append(errs, c.validateRope()...)
	}
	return errors.Join(errs...)
}

// JSON encodes the config as transformers writes it: every key of Raw, with
// the interpreted fields written back under the family's names.
func (c *Config) JSON() ([]byte, error) {
	out := map[string]any{}
	for k, v := range c.Raw {
		out[k] = v
	}
	out["model_type"] = c.ModelType
	if len(c.Architectures) > 0 {
		out["architectures"] = c.Architectures
	}
	out["vocab_size"] = c.VocabSize
	out["initializer_range"] = c.InitializerRange
	setPtr := func(k string, p *int) {
		if p != nil {
			out[k] = *p
		}
	}
	setPtr("bos_token_id", c.BOSTokenID)
	if eos := c.eosValue(); eos != nil {
		out["eos_token_id"] = eos
	}
	setPtr("pad_token_id", c.PadTokenID)
	out["tie_word_embeddings"] = c.TieWordEmbeddings
	if c.TorchDtype != "" {
		// transformers >= 4.56 writes "dtype", older versions "torch_dtype":
		// keep the key(s) the source had, always with one value.
		_, hasDtype := c.Raw["dtype"]
		_, hasTorch := c.Raw["torch_dtype"]
		if hasDtype {
			out["dtype"] = c.TorchDtype
		}
		if hasTorch || !hasDtype {
			out["torch_dtype"] = c.TorchDtype
		}
	}
	switch c.Family() {
	case GPT2:
		out["n_embd"] = c.HiddenSize
		out["n_layer"] = c.NumLayers
		out["n_head"] = c.NumHeads
		if c.IntermediateSize != 4*c.HiddenSize {
			out["n_inner"] = c.IntermediateSize
		} else if _, ok := out["n_inner"]; !ok {
			out["n_inner"] = nil
		}
		out["n_positions"] = c.MaxPositions
		if _, ok := out["n_ctx"]; ok {
			out["n_ctx"] = c.MaxPositions
		}
		out["layer_norm_epsilon"] = c.NormEps
		if _, ok := out["activation_function"]; !ok {
			out["activation_function"] = "gelu_new"
		}
		for k, v := range map[string]any{"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0} {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	case Llama:
		out["hidden_size"] = c.HiddenSize
		out["num_hidden_layers"] = c.NumLayers
		out["num_attention_heads"] = c.NumHeads
		out["num_key_value_heads"] = c.NumKVHeads
		out["intermediate_size"] = c.IntermediateSize
		out["max_position_embeddings"] = c.MaxPositions
		out["rms_norm_eps"] = c.NormEps
		out["rope_theta"] = c.RopeTheta
		if c.ModelType != "qwen2" {
			out["attention_bias"] = c.AttentionBias
			out["mlp_bias"] = c.MLPBias
		}
		if c.HeadDim != c.HiddenSize/c.NumHeads {
			out["head_dim"] = c.HeadDim
		}
		if _, ok := out["hidden_act"]; !ok && !c.Gemma {
			out["hidden_act"] = "silu"
		}
	case BERT, DistilBERT, RoBERTa:
		c.encoderJSON(out)
	case DeBERTaV2:
		c.debertaJSON(out)
	}
	if c.ProblemType != "" {
		out["problem_type"] = c.ProblemType
	}
	if c.NumLabels > 0 {
		out["num_labels"] = c.NumLabels
		id2 := map[string]string{}
		l2id := map[string]int{}
		for i := 0; i < c.NumLabels; i++ {
			name, ok := c.ID2Label[i]
			if !ok {
				name = fmt.Sprintf("LABEL_%d", i)
			}
			id2[strconv.Itoa(i)] = name
			l2id[name] = i
		}
		out["id2label"] = id2
		out["label2id"] = l2id
		delete(out, "num_labels") // transformers derives it from id2label
	}
	return json.MarshalIndent(out, "", "  ")
}

// eosValue is eos_token_id as config.json holds it: a list when the source
// had one (or EOSTokenIDs has several ids), else the single id; nil when unset.
// EOSTokenID, when set, is the list's first id.
func (c *Config) eosValue() any {
	if c.EOSTokenID == nil {
		return nil
	}
	ids := c.StopIDs()
	_, isList := c.Raw["eos_token_id"].([]any)
	if len(ids) > 1 || isList {
		return ids
	}
	return ids[0]
}

// StopIDs lists the eos ids (EOSTokenID first, then the rest of
// EOSTokenIDs): generation stops at any of them, as transformers does with
// a list-valued eos_token_id.
func (c *Config) StopIDs() []int {
	var ids []int
	if c.EOSTokenID != nil {
		ids = append(ids, *c.EOSTokenID)
	}
	for _, id := range c.EOSTokenIDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	b, err := c.JSON()
	if err != nil {
		panic(err)
	}
	n, err := ParseConfig(b)
	if err != nil {
		panic(err)
	}
	return n
}

// reader pulls typed values out of the decoded JSON, remembering the first
// type error.
type reader struct {
	raw map[string]any
	err error
}

func (r *reader) fail(key string, v any, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %q: want %s, got %v", key, want, v)
	}
}

func (r *reader) str(key string) string {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(key, v, "a string")
	}
	return s
}

func (r *reader) list(key string) []any {
	l, _ := r.raw[key].([]any)
	return l
}

func (r *reader) int(key string, def int) int {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) {
		r.fail(key, v, "an integer")
		return def
	}
	return int(f)
}

func (r *reader) intPtr(key string) *int {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return nil
	}
	if l, ok := v.([]any); ok && len(l) > 0 { // eos_token_id may be a list
		v = l[0]
	}
	f, ok := v.(float64)
	if !ok {
		r.fail(key, v, "an integer")
		return nil
	}
	i := int(f)
	return &i
}

// intList reads an integer or a list of integers as a list.
func (r *reader) intList(key string) []int {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		l = []any{v}
	}
	var ids []int
	for _, x := range l {
		f, ok := x.(float64)
		if !ok || f != float64(int(f)) {
			r.fail(key, v, "an integer or a list of integers")
			return nil
		}
		ids = append(ids, int(f))
	}
	return ids
}

func (r *reader) float(key string, def float64) float64 {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok {
		r.fail(key, v, "a number")
		return def
	}
	return f
}

func (r *reader) bool(key string, def bool) bool {
	v, ok := r.raw[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		r.fail(key, v, "true or false")
		return def
	}
	return b
}

// Preset returns the config of a named size preset for training from
// scratch, with the given vocabulary size:
//
//	tiny         GPT-2, 4 layers, 4 heads, width 256, 512 positions (~1M + 0.26M per 1k vocab)
//	tiny-llama   Llama, 4 layers, 4 heads (2 kv), width 256, SwiGLU 688, 512 positions
//	tiny-qwen2, tiny-qwen3, tiny-gemma2, tiny-gemma3, tiny-phi3, tiny-mistral
//	             those families at tiny-llama's sizes (Gemma: head_dim 64,
//	             window 8; Phi-3: partial rotary 0.75 and longrope; Mistral: window 8)
//	gpt2-small   GPT-2 small: 12 layers, 12 heads, width 768, 1024 positions (124M with 50257 vocab)
//	tiny-bert, tiny-distilbert, tiny-roberta, tiny-deberta
//	             encoders (classification only), 4 layers, 4 heads, width
//	             256, GELU MLP 1024, 512 positions (RoBERTa: after its
//	             padding_idx; FitTokenizer sets pad_token_id; DeBERTa:
//	             DeBERTa-v3's relative attention, 256 buckets)
//
// Presets train without dropout (their config says 0.0, so saving and
// loading them keeps it).
func Preset(name string, vocab int) (*Config, error) {
	var js string
	switch name {
	case "tiny":
		js = `{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_embd":256,"n_layer":4,"n_head":4,"n_positions":512,"embd_pdrop":0.0,"attn_pdrop":0.0,"resid_pdrop":0.0}`
	case "tiny-qwen3":
		js = `{"model_type":"qwen3","architectures":["Qwen3ForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-6,"rope_theta":1000000,"tie_word_embeddings":true}`
	case "tiny-gemma2":
		js = `{"model_type":"gemma2","architectures":["Gemma2ForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":64,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-6,"sliding_window":8,"query_pre_attn_scalar":64,"attn_logit_softcapping":50.0,"final_logit_softcapping":30.0,"hidden_activation":"gelu_pytorch_tanh","tie_word_embeddings":true}`
	case "tiny-gemma3":
		js = `{"model_type":"gemma3_text","architectures":["Gemma3ForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":1,"head_dim":64,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-6,"sliding_window":8,"sliding_window_pattern":2,"rope_theta":1000000,"rope_local_base_freq":10000,"query_pre_attn_scalar":64,"hidden_activation":"gelu_pytorch_tanh","tie_word_embeddings":true}`
	case "tiny-phi3":
		// Phi-4-mini's shape in small: fused projections, 3/4 of each head
		// rotating, longrope over 256 original positions
		js = `{"model_type":"phi3","architectures":["Phi3ForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":688,"max_position_embeddings":512,"original_max_position_embeddings":256,"rms_norm_eps":1e-5,"partial_rotary_factor":0.75,"rope_theta":10000,"tie_word_embeddings":true,"resid_pdrop":0.0,"embd_pdrop":0.0,"attention_dropout":0.0,"sliding_window":null}`
	case "tiny-qwen2":
		js = `{"model_type":"qwen2","architectures":["Qwen2ForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-6,"rope_theta":1000000,"tie_word_embeddings":true}`
	case "tiny-mistral":
		js = `{"model_type":"mistral","architectures":["MistralForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-5,"rope_theta":10000,"sliding_window":8,"tie_word_embeddings":true}`
	case "tiny-llama":
		js = `{"model_type":"llama","architectures":["LlamaForCausalLM"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":688,"max_position_embeddings":512,"rms_norm_eps":1e-5,"tie_word_embeddings":true}`
	case "tiny-bert":
		js = `{"model_type":"bert","architectures":["BertForSequenceClassification"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"intermediate_size":1024,"max_position_embeddings":512,"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu","hidden_dropout_prob":0.0,"attention_probs_dropout_prob":0.0}`
	case "tiny-distilbert":
		js = `{"model_type":"distilbert","architectures":["DistilBertForSequenceClassification"],"dim":256,"n_layers":4,"n_heads":4,"hidden_dim":1024,"max_position_embeddings":512,"activation":"gelu","dropout":0.0,"attention_dropout":0.0,"seq_classif_dropout":0.0}`
	case "tiny-deberta":
		// DeBERTa-v3's layout (microsoft/deberta-v3-base's config) at
		// tiny-bert's sizes: relative attention over 256 log buckets,
		// shared keys, normalised relative embeddings, no absolute
		// positions and no token types
		js = `{"model_type":"deberta-v2","architectures":["DebertaV2ForSequenceClassification"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"intermediate_size":1024,"max_position_embeddings":512,"type_vocab_size":0,"layer_norm_eps":1e-7,"hidden_act":"gelu","hidden_dropout_prob":0.0,"attention_probs_dropout_prob":0.0,"relative_attention":true,"position_buckets":256,"max_relative_positions":-1,"position_biased_input":false,"pos_att_type":["p2c","c2p"],"share_att_key":true,"norm_rel_ebd":"layer_norm","pooler_hidden_size":256,"pooler_hidden_act":"gelu","pooler_dropout":0.0}`
	case "tiny-roberta":
		// roberta-base's 514 positions: 512 after padding_idx 1
		js = `{"model_type":"roberta","architectures":["RobertaForSequenceClassification"],"hidden_size":256,"num_hidden_layers":4,"num_attention_heads":4,"intermediate_size":1024,"max_position_embeddings":514,"type_vocab_size":1,"layer_norm_eps":1e-5,"hidden_act":"gelu","hidden_dropout_prob":0.0,"attention_probs_dropout_prob":0.0}`
	case "gpt2-small":
		js = `{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_embd":768,"n_layer":12,"n_head":12,"n_positions":1024,"embd_pdrop":0.0,"attn_pdrop":0.0,"resid_pdrop":0.0}`
	default:
		return nil, fmt.Errorf("model: unknown preset %q (want %s)", name, strings.Join(PresetNames, ", "))
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(js), &raw)
	raw["vocab_size"] = vocab
	if name == "tiny-phi3" { // 24 rotary pairs: factors rising 1 -> 2 (short), 1 -> 8 (long)
		short, long := make([]any, 24), make([]any, 24)
		for j := range short {
			short[j] = 1 + float64(j)/23
			long[j] = math.Pow(8, float64(j)/23)
		}
		raw["rope_scaling"] = map[string]any{"type": "longrope", "short_factor": short, "long_factor": long}
	}
	b, _ := json.Marshal(raw)
	return ParseConfig(b)
}

// PresetNames lists the presets Preset knows.
var PresetNames = []string{"tiny", "tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3", "tiny-mistral", "gpt2-small", "tiny-bert", "tiny-distilbert", "tiny-roberta", "tiny-deberta"}

func configPath(dir string) string { return filepath.Join(dir, "config.json") }

// ScoreIndex is the position a sequence-classification (score) head reads
// in a row whose real tokens end at index last, where at(i) is the token at
// position i: transformers' rule, the last token that is not pad_token_id.
// With pad == eos (GPT-2 style tokenizers), a row ending in eos is read at
// the token before it, as transformers and TRL read it, so that scores
// agree across the two. Without a pad_token_id it is last; a row of pads
// only reads position 0.
//
// Encoders read their first token ([CLS], <s>) instead, as their heads do:
// position 0 of a right-padded row, the first token that is not
// pad_token_id of a left-padded one.
func (c *Config) ScoreIndex(last int, at func(i int) int64) int {
	if c.Encoder() {
		if c.PadTokenID != nil {
			for i := 0; i < last; i++ {
				if at(i) != int64(*c.PadTokenID) {
					return i
				}
			}
			return last
		}
		return 0
	}
	if c.PadTokenID == nil {
		return last
	}
	pad := int64(*c.PadTokenID)
	for i := last; i > 0; i-- {
		if at(i) != pad {
			return i
		}
	}
	return 0
}

// gemmaLayers reads which layers slide and Gemma 3's local rotary base:
// layer_types when present (transformers' current configs), else Gemma 2's
// even layers, or Gemma 3's sliding_window_pattern (every pattern-th layer
// global, as Gemma3TextConfig derives layer_types).
func (c *Config) gemmaLayers(r reader, raw map[string]any) error {
	n := r.int("num_hidden_layers", 0)
	if n <= 0 || n > maxLayers {
		return nil // Validate reports it
	}
	c.Sliding = make([]bool, n)
	if lt, ok := raw["layer_types"].([]any); ok {
		if err := c.readLayerTypes(lt); err != nil {
			return err
		}
	} else if c.ModelType == "gemma2" {
		for i := range c.Sliding {
			c.Sliding[i] = i%2 == 0
		}
	} else {
		p := r.int("sliding_window_pattern", 6)
		if p <= 0 {
			return fmt.Errorf("sliding_window_pattern must be > 0, got %d", p)
		}
		for i := range c.Sliding {
			c.Sliding[i] = (i+1)%p != 0
		}
	}
	if c.ModelType == "gemma3_text" {
		c.QKNorm = true
		c.LocalRopeTheta = r.float("rope_local_base_freq", 10000)
		if r.bool("use_bidirectional_attention", false) {
			return fmt.Errorf("use_bidirectional_attention: bidirectional (embedding) Gemma 3 models are not supported")
		}
	}
	return nil
}
