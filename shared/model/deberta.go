package model

// DeBERTa-v2 and -v3 (He et al. 2021, "DeBERTa: Decoding-enhanced BERT with
// Disentangled Attention", arXiv:2006.03654; He et al. 2023, "DeBERTaV3",
// arXiv:2111.09543): an encoder with disentangled attention, as
// transformers' models/deberta_v2/modeling_deberta_v2.py (DebertaV2Model,
// ContextPooler, DebertaV2ForSequenceClassification), with its config
// fields and tensor names. Inference only: plain structs and one forward
// pass; it stands beside the decoder families of Model.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// DebertaV2Config is transformers' DebertaV2Config: the config.json fields
// the forward pass reads, with its defaults where config.json omits them
// (see DefaultDebertaV2Config).
type DebertaV2Config struct {
	ModelType             string  `json:"model_type"`
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	IntermediateSize      int     `json:"intermediate_size"`
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TypeVocabSize         int     `json:"type_vocab_size"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	PadTokenID            int     `json:"pad_token_id"`
	// RelativeAttention turns on the disentangled (relative position) terms.
	RelativeAttention bool `json:"relative_attention"`
	// MaxRelativePositions is the span k of relative distances; < 1 means
	// max_position_embeddings.
	MaxRelativePositions int `json:"max_relative_positions"`
	// PositionBuckets > 0 maps distances to that many log buckets
	// (make_log_bucket_position; DeBERTa-v3: 256); the relative embedding
	// table then has 2·position_buckets rows.
	PositionBuckets int `json:"position_buckets"`
	// PositionBiasedInput adds absolute position embeddings to the input
	// (default true; DeBERTa-v3: false).
	PositionBiasedInput *bool `json:"position_biased_input"`
	// PosAttType is the list of disentangled terms, "c2p" and/or "p2c"
	// (config.json may also write "p2c|c2p").
	PosAttType posAttTypes `json:"pos_att_type"`
	// ShareAttKey projects relative embeddings with the content query and
	// key projections instead of pos_key_proj / pos_query_proj.
	ShareAttKey bool `json:"share_att_key"`
	// NormRelEbd "layer_norm" normalises the relative embedding table.
	NormRelEbd string `json:"norm_rel_ebd"`
	// EmbeddingSize != hidden_size adds embed_proj (0: hidden_size).
	EmbeddingSize int `json:"embedding_size"`
	// ConvKernelSize > 0 adds the ConvLayer after the first layer
	// (DeBERTa-v2 xlarge/xxlarge); rl refuses it.
	ConvKernelSize    int    `json:"conv_kernel_size"`
	AttentionHeadSize int    `json:"attention_head_size"` // 0: hidden_size / num_attention_heads
	PoolerHiddenSize  int    `json:"pooler_hidden_size"`  // 0: hidden_size
	PoolerHiddenAct   string `json:"pooler_hidden_act"`
	// ProblemType is single_label_classification, multi_label_classification
	// or regression (num_labels 1 and none given: regression, as
	// transformers infers it; encoder reward models).
	ProblemType string            `json:"problem_type"`
	ID2Label    map[string]string `json:"id2label"`
	NumLabels   int               `json:"num_labels"` // len(id2label) when that is given; default 2
}

// posAttTypes reads pos_att_type as a list or a "p2c|c2p" string, as
// DebertaV2Config does.
type posAttTypes []string

func (p *posAttTypes) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*p = nil
		for _, x := range strings.Split(strings.ToLower(s), "|") {
			if x = strings.TrimSpace(x); x != "" {
				*p = append(*p, x)
			}
		}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("pos_att_type: want a list or a \"p2c|c2p\" string: %w", err)
	}
	*p = l
	return nil
}

// DefaultDebertaV2Config is DebertaV2Config's defaults (transformers'
// configuration_deberta_v2.py).
func DefaultDebertaV2Config() DebertaV2Config {
	return DebertaV2Config{
		ModelType: "deberta-v2", VocabSize: 128100, HiddenSize: 1536, NumHiddenLayers: 24, NumAttentionHeads: 24,
		IntermediateSize: 6144, HiddenAct: "gelu", MaxPositionEmbeddings: 512, LayerNormEps: 1e-7,
		MaxRelativePositions: -1, PositionBuckets: -1, NormRelEbd: "none", PoolerHiddenAct: "gelu", NumLabels: 2,
	}
}

// ReadDebertaV2Config reads a DeBERTa-v2 config.json.
func ReadDebertaV2Config(path string) (*DebertaV2Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	c := DefaultDebertaV2Config()
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if len(c.ID2Label) > 0 {
		c.NumLabels = len(c.ID2Label)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	return &c, nil
}

// Validate reports what this implementation cannot run.
func (c *DebertaV2Config) Validate() error {
	var errs []error
	if c.ModelType != "deberta-v2" {
		errs = append(errs, fmt.Errorf("model_type %q: want deberta-v2", c.ModelType))
	}
	if c.HiddenSize <= 0 || c.NumAttentionHeads <= 0 || c.NumHiddenLayers <= 0 || c.VocabSize <= 0 || c.IntermediateSize <= 0 {
		errs = append(errs, errors.New("hidden_size, num_attention_heads, num_hidden_layers, vocab_size and intermediate_size must be positive"))
	} else if c.AttentionHeadSize == 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		errs = append(errs, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads))
	}
	if c.ConvKernelSize > 0 {
		errs = append(errs, fmt.Errorf("conv_kernel_size %d: the ConvLayer of DeBERTa-v2 xlarge/xxlarge is not implemented (DeBERTa-v3 has none)", c.ConvKernelSize))
	}
	for _, t := range c.PosAttType {
		if t != "c2p" && t != "p2c" {
			errs = append(errs, fmt.Errorf("pos_att_type %q: want c2p and/or p2c", t))
		}
	}
	for _, a := range []string{c.HiddenAct, c.PoolerHiddenAct} {
		if _, ok := debertaActs[a]; !ok {
			errs = append(errs, fmt.Errorf("activation %q: want one of gelu, gelu_new, gelu_pytorch_tanh, relu, tanh", a))
		}
	}
	if c.NumLabels < 1 {
		errs = append(errs, fmt.Errorf("num_labels %d: want at least 1", c.NumLabels))
	}
	switch c.ProblemType {
	case "", "regression", "single_label_classification", "multi_label_classification":
	default:
		errs = append(errs, fmt.Errorf("problem_type %q: want regression, single_label_classification or multi_label_classification", c.ProblemType))
	}
	if c.MaxPositionEmbeddings <= 0 {
		errs = append(errs, errors.New("max_position_embeddings must be positive"))
	}
	return errors.Join(errs...)
}

func (c *DebertaV2Config) positionBiased() bool {
	return c.PositionBiasedInput == nil || *c.PositionBiasedInput
}
func (c *DebertaV2Config) embeddingSize() int {
	if c.EmbeddingSize > 0 {
		return c.EmbeddingSize
	}
	return c.HiddenSize
}
func (c *DebertaV2Config) headSize() int {
	if c.AttentionHeadSize > 0 {
		return c.AttentionHeadSize
	}
	return c.HiddenSize / c.NumAttentionHeads
}
func (c *DebertaV2Config) poolerSize() int {
	if c.PoolerHiddenSize > 0 {
		return c.PoolerHiddenSize
	}
	return c.HiddenSize
}
func (c *DebertaV2Config) maxRelative() int {
	if c.MaxRelativePositions < 1 {
		return c.MaxPositionEmbeddings
	}
	return c.MaxRelativePositions
}

// attSpan is pos_ebd_size: the relative embeddings used are 2·attSpan rows.
func (c *DebertaV2Config) attSpan() int {
	if c.PositionBuckets > 0 {
		return c.PositionBuckets
	}
	return c.maxRelative()
}
func (c *DebertaV2Config) has(t string) bool { return slices.Contains(c.PosAttType, t) }

// Regression reports whether the head is a regression (one score per
// text: encoder reward models): problem_type regression, or num_labels 1
// with no problem_type (transformers' inference in the forward).
func (c *DebertaV2Config) Regression() bool {
	return c.ProblemType == "regression" || c.ProblemType == "" && c.NumLabels == 1
}

var debertaActs = map[string]func(*tensor.Tensor) *tensor.Tensor{
	"gelu":              (*tensor.Tensor).Gelu,
	"gelu_new":          (*tensor.Tensor).GeluTanh,
	"gelu_pytorch_tanh": (*tensor.Tensor).GeluTanh,
	"relu":              (*tensor.Tensor).Relu,
	"tanh":              (*tensor.Tensor).Tanh,
}

type debertaLinear struct{ W, B *tensor.Tensor }

func (l debertaLinear) apply(x *tensor.Tensor) *tensor.Tensor { return x.Linear(l.W, l.B) }

type debertaNorm struct{ W, B *tensor.Tensor }

type debertaLayer struct {
	Query, Key, Value    debertaLinear // attention.self.{query,key,value}_proj
	PosKey, PosQuery     debertaLinear // attention.self.pos_{key,query}_proj (not with share_att_key)
	AttnOut              debertaLinear // attention.output.dense
	AttnNorm             debertaNorm   // attention.output.LayerNorm
	Intermediate, Output debertaLinear // intermediate.dense, output.dense
	OutNorm              debertaNorm   // output.LayerNorm
}

// DebertaV2 is DebertaV2Model, with ContextPooler and the classifier of
// DebertaV2ForSequenceClassification when the checkpoint has them.
type DebertaV2 struct {
	Config *DebertaV2Config
	Device tensor.Device

	Word, Position, TokenType *tensor.Tensor // embeddings.*_embeddings.weight (Position, TokenType may be nil)
	EmbedProj                 *tensor.Tensor // embeddings.embed_proj.weight, or nil
	EmbNorm                   debertaNorm    // embeddings.LayerNorm
	Layers                    []debertaLayer // encoder.layer.N
	RelEmbeddings             *tensor.Tensor // encoder.rel_embeddings.weight (2·att_span, H), or nil
	RelNorm                   *debertaNorm   // encoder.LayerNorm (norm_rel_ebd layer_norm), or nil
	Pooler, Classifier        *debertaLinear // pooler.dense, classifier (sequence classification), or nil

	owned []*tensor.Tensor
}

// Free releases the weights.
func (d *DebertaV2) Free() {
	if d == nil {
		return
	}
	for _, t := range d.owned {
		t.Free()
	}
	d.owned = nil
}

// IsDebertaV2Dir reports whether dir's config.json has model_type deberta-v2.
func IsDebertaV2Dir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return false
	}
	var c struct {
		ModelType string `json:"model_type"`
	}
	return json.Unmarshal(b, &c) == nil && c.ModelType == "deberta-v2"
}

// LoadDebertaV2 reads a DeBERTa-v2 checkpoint (config.json and
// model.safetensors, sharded, or pytorch_model.bin) in float32 onto dev.
// Tensor names are transformers': a DebertaV2ForSequenceClassification
// ("deberta." prefix, pooler, classifier) or a bare DebertaV2Model.
func LoadDebertaV2(dir string, dev tensor.Device) (d *DebertaV2, err error) {
	defer tensor.Recover(&err, "model: load "+dir)
	c, err := ReadDebertaV2Config(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	f, err := safetensors.ReadModelDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	d = &DebertaV2{Config: c, Device: dev}
	defer func() {
		if err != nil {
			d.Free()
			d = nil
		}
	}()
	prefix := ""
	if _, ok := f.Tensors["deberta.embeddings.word_embeddings.weight"]; ok {
		prefix = "deberta."
	}
	var missing []string
	used := map[string]bool{}
	get := func(name string, shape ...int64) *tensor.Tensor {
		st, ok := f.Tensors[name]
		if !ok {
			missing = append(missing, name)
			return nil
		}
		used[name] = true
		if !slices.Equal(st.Shape, shape) {
			err = errors.Join(err, fmt.Errorf("%s has shape %v, config wants %v", name, st.Shape, shape))
			return nil
		}
		v, e := st.Float32s()
		if e != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", name, e))
			return nil
		}
		t := tensor.FromFloat32s(v, shape...).To(tensor.Float32, dev).Keep()
		d.owned = append(d.owned, t)
		return t
	}
	lin := func(name string, out, in int64) debertaLinear {
		return debertaLinear{W: get(name+".weight", out, in), B: get(name+".bias", out)}
	}
	norm := func(name string, n int64) debertaNorm {
		return debertaNorm{W: get(name+".weight", n), B: get(name+".bias", n)}
	}
	H, E, I := int64(c.HiddenSize), int64(c.embeddingSize()), int64(c.IntermediateSize)
	A := int64(c.NumAttentionHeads * c.headSize())
	p := prefix + "embeddings."
	d.Word = get(p+"word_embeddings.weight", int64(c.VocabSize), E)
	if c.positionBiased() {
		d.Position = get(p+"position_embeddings.weight", int64(c.MaxPositionEmbeddings), E)
	}
	if c.TypeVocabSize > 0 {
		d.TokenType = get(p+"token_type_embeddings.weight", int64(c.TypeVocabSize), E)
	}
	if E != H {
		d.EmbedProj = get(p+"embed_proj.weight", H, E)
	}
	d.EmbNorm = norm(p+"LayerNorm", H)
	for i := range c.NumHiddenLayers {
		p := fmt.Sprintf("%sencoder.layer.%d.", prefix, i)
		l := debertaLayer{
			Query: lin(p+"attention.self.query_proj", A, H), Key: lin(p+"attention.self.key_proj", A, H),
			Value: lin(p+"attention.self.value_proj", A, H), AttnOut: lin(p+"attention.output.dense", H, A),
			AttnNorm: norm(p+"attention.output.LayerNorm", H), Intermediate: lin(p+"intermediate.dense", I, H),
			Output: lin(p+"output.dense", H, I), OutNorm: norm(p+"output.LayerNorm", H),
		}
		if c.RelativeAttention && !c.ShareAttKey {
			if c.has("c2p") {
				l.PosKey = lin(p+"attention.self.pos_key_proj", A, H)
			}
			if c.has("p2c") {
				l.PosQuery = lin(p+"attention.self.pos_query_proj", A, H)
			}
		}
		d.Layers = append(d.Layers, l)
	}
	if c.RelativeAttention {
		d.RelEmbeddings = get(prefix+"encoder.rel_embeddings.weight", 2*int64(c.attSpan()), H)
	}
	if slices.Contains(strings.Split(strings.ReplaceAll(strings.ToLower(c.NormRelEbd), " ", ""), "|"), "layer_norm") {
		n := norm(prefix+"encoder.LayerNorm", H)
		d.RelNorm = &n
	}
	if _, ok := f.Tensors["classifier.weight"]; ok {
		P := int64(c.poolerSize())
		pool := lin("pooler.dense", P, H)
		cls := lin("classifier", int64(c.NumLabels), P)
		d.Pooler, d.Classifier = &pool, &cls
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		err = errors.Join(err, fmt.Errorf("missing %s", strings.Join(missing, ", ")))
	}
	if err != nil {
		return nil, fmt.Errorf("model: load %s: the weights do not match config.json: %w", dir, err)
	}
	return d, nil
}

// RelativePositions is build_relative_position(T, T) for the config: the
// (T, T) relative positions RelativeBucket(q - k).
func (c *DebertaV2Config) RelativePositions(T int) []int64 {
	out := make([]int64, T*T)
	for q := range T {
		for k := range T {
			out[q*T+k] = int64(c.RelativeBucket(q - k))
		}
	}
	return out
}

// RelativeBucket is make_log_bucket_position of one distance r = q - k when
// position_buckets > 0 (else r itself), computed in float32 as torch
// computes it:
//
//	mid = buckets/2; |r| <= mid: r; else
//	sign(r)·(ceil(log(|r|/mid) / log((max_relative_positions-1)/mid) · (mid-1)) + mid)
func (c *DebertaV2Config) RelativeBucket(r int) int {
	buckets, maxPos := c.PositionBuckets, c.maxRelative()
	if buckets <= 0 || maxPos <= 0 {
		return r
	}
	mid := buckets / 2
	abs := r
	if abs < 0 {
		abs = -abs
	}
	if abs <= mid {
		return r
	}
	logMax := float32(math.Log(float64(float32(float64(maxPos-1) / float64(mid)))))
	lp := float32(math.Log(float64(float32(abs) / float32(mid))))
	v := int(float32(math.Ceil(float64(lp/logMax*float32(mid-1)))) + float32(mid))
	if r < 0 {
		return -v
	}
	return v
}

// Forward is DebertaV2Model's forward: the last hidden states (B, T, H) of
// ids (B, T); mask (B, T) is 1 for tokens and 0 for padding (nil: none),
// typeIDs (B, T) the token types (nil: zeros). Positions are 0..T-1 (right
// padding, as transformers' default position_ids). New tensors belong to
// the caller's tensor.Tidy scope.
func (d *DebertaV2) Forward(ids, mask, typeIDs *tensor.Tensor) *tensor.Tensor {
	c := d.Config
	B, T := ids.Size(0), ids.Size(1)
	x := tensor.Embedding(d.Word, ids) // (B, T, E)
	if d.Position != nil {
		x = x.Add(tensor.Embedding(d.Position, tensor.Arange(0, T, d.Device).Unsqueeze(0)))
	}
	if d.TokenType != nil {
		if typeIDs == nil {
			typeIDs = tensor.ZerosOn([]int64{B, T}, tensor.Int64, d.Device)
		}
		x = x.Add(tensor.Embedding(d.TokenType, typeIDs))
	}
	if d.EmbedProj != nil {
		x = x.Linear(d.EmbedProj, nil)
	}
	x = x.LayerNorm(d.EmbNorm.W, d.EmbNorm.B, c.LayerNormEps) // (B, T, H)
	var pad *tensor.Tensor                                    // (B, 1, T, T) true where q or k is padding
	if mask != nil {
		m := mask.ToDType(x.DType())
		x = x.Mul(m.Unsqueeze(2))
		pad = m.Unsqueeze(1).Unsqueeze(2).Mul(m.Unsqueeze(1).Unsqueeze(3)).EqScalar(0)
	}
	var rel, relPos *tensor.Tensor
	if c.RelativeAttention {
		rel = d.RelEmbeddings
		if d.RelNorm != nil {
			rel = rel.LayerNorm(d.RelNorm.W, d.RelNorm.B, c.LayerNormEps)
		}
		rel = rel.Narrow(0, 0, 2*int64(c.attSpan())).Unsqueeze(0) // (1, 2S, H)
		relPos = tensor.FromInt64s(c.RelativePositions(int(T)), T, T).To(tensor.Int64, d.Device)
	}
	for i := range d.Layers {
		x = d.layer(&d.Layers[i], x, pad, rel, relPos)
	}
	return x
}

// heads splits (B, T, nh·d) into (B, nh, T, d).
func (d *DebertaV2) heads(x *tensor.Tensor) *tensor.Tensor {
	nh, hd := int64(d.Config.NumAttentionHeads), int64(d.Config.headSize())
	return x.Reshape(x.Size(0), x.Size(1), nh, hd).Permute(0, 2, 1, 3)
}

// layer is DebertaV2Layer: disentangled self-attention (Eq. 4 of He et
// al. 2021: content-to-content + content-to-position + position-to-content,
// scaled by 1/sqrt(d·scale_factor), scale_factor = 1 + |pos_att_type|),
// then the feed-forward block, each with a residual and post-LayerNorm.
func (d *DebertaV2) layer(l *debertaLayer, x, pad, rel, relPos *tensor.Tensor) *tensor.Tensor {
	c := d.Config
	B, T := x.Size(0), x.Size(1)
	q, k, v := d.heads(l.Query.apply(x)), d.heads(l.Key.apply(x)), d.heads(l.Value.apply(x)) // (B, nh, T, d)
	sf := 1
	if c.has("c2p") {
		sf++
	}
	if c.has("p2c") {
		sf++
	}
	scale := float64(float32(math.Sqrt(float64(c.headSize() * sf))))
	scores := q.Matmul(k.Transpose(-1, -2)).DivScalar(scale) // (B, nh, T, T)
	if c.RelativeAttention && len(c.PosAttType) > 0 {
		S := int64(c.attSpan())
		nh := int64(c.NumAttentionHeads)
		if c.has("c2p") {
			pk := l.PosKey
			if c.ShareAttKey {
				pk = l.Key
			}
			posKey := d.heads(pk.apply(rel))                                                   // (1, nh, 2S, d)
			c2p := q.Matmul(posKey.Transpose(-1, -2))                                          // (B, nh, T, 2S)
			idx := relPos.AddScalar(float64(S)).Clamp(0, float64(2*S-1)).ToDType(tensor.Int64) // (T, T)
			c2p = c2p.Gather(-1, idx.Expand(B, nh, T, T))
			scores = scores.Add(c2p.DivScalar(scale))
		}
		if c.has("p2c") {
			pq := l.PosQuery
			if c.ShareAttKey {
				pq = l.Query
			}
			posQuery := d.heads(pq.apply(rel))                                                       // (1, nh, 2S, d)
			p2c := k.Matmul(posQuery.Transpose(-1, -2))                                              // (B, nh, T, 2S)
			idx := relPos.Neg().AddScalar(float64(S)).Clamp(0, float64(2*S-1)).ToDType(tensor.Int64) // (T, T)
			p2c = p2c.Gather(-1, idx.Expand(B, nh, T, T)).Transpose(-1, -2)
			scores = scores.Add(p2c.DivScalar(scale))
		}
	}
	// XSoftmax: padded entries get the dtype's minimum, then 0 after softmax
	var probs *tensor.Tensor
	if pad != nil {
		probs = scores.MaskedFill(pad, tensor.MinValue(scores.DType())).Softmax(-1).MaskedFill(pad, 0)
	} else {
		probs = scores.Softmax(-1)
	}
	ctx := probs.Matmul(v).Permute(0, 2, 1, 3).Reshape(B, T, -1) // (B, T, nh·d)
	h := l.AttnOut.apply(ctx).Add(x).LayerNorm(l.AttnNorm.W, l.AttnNorm.B, c.LayerNormEps)
	inter := debertaActs[c.HiddenAct](l.Intermediate.apply(h))
	return l.Output.apply(inter).Add(h).LayerNorm(l.OutNorm.W, l.OutNorm.B, c.LayerNormEps)
}

// Classify is DebertaV2ForSequenceClassification's logits (B, num_labels)
// in eval mode: ContextPooler (the first token's hidden state, dense,
// pooler_hidden_act) and the classifier. With a regression head (num_labels
// 1) the logit is the score (encoder reward models).
func (d *DebertaV2) Classify(ids, mask, typeIDs *tensor.Tensor) (logits *tensor.Tensor, err error) {
	defer tensor.Recover(&err, "deberta-v2 forward")
	if d.Classifier == nil {
		return nil, errors.New("model: deberta-v2: the checkpoint has no classifier (a bare DebertaV2Model)")
	}
	h := d.Forward(ids, mask, typeIDs)                                   // (B, T, H)
	cls := h.Select(1, 0)                                                // (B, H)
	pooled := debertaActs[d.Config.PoolerHiddenAct](d.Pooler.apply(cls)) // (B, P)
	return d.Classifier.apply(pooled), nil                               // (B, num_labels)
}
