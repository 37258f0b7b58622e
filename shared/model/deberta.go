package model

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/rlsuite/rl/shared/tensor"
)

// DeBERTa-v2 and -v3 (He et al. 2021, "DeBERTa: Decoding-enhanced BERT with
// Disentangled Attention", arXiv:2006.03654; He et al. 2023, "DeBERTaV3",
// arXiv:2111.09543) as transformers' models/deberta_v2/modeling_deberta_v2.py
// builds DebertaV2ForSequenceClassification: BERT's post-LN encoder
// (bert.go) whose attention adds disentangled content-to-position and
// position-to-content terms over relative distances, with ContextPooler
// (dense and pooler_hidden_act on the first token) and `classifier`. The
// family of the most used open reward models (DeBERTa-v3). Tensor names are
// transformers': deberta.embeddings..., deberta.encoder.layer.N.attention.
// self.query_proj..., deberta.encoder.rel_embeddings, pooler.dense,
// classifier.

// DebertaOptions are DebertaV2Config's fields beyond BERT's, with its
// defaults (configuration_deberta_v2.py) where config.json omits them.
type DebertaOptions struct {
	// RelativeAttention (relative_attention; default false, DeBERTa's
	// released configs true) adds the disentangled terms.
	RelativeAttention bool
	// MaxRelativePositions (max_relative_positions; default -1) is the span
	// k of relative distances; < 1 means max_position_embeddings.
	MaxRelativePositions int
	// PositionBuckets (position_buckets; default -1: none; DeBERTa-v3 256)
	// > 0 maps distances to that many log buckets (make_log_bucket_position);
	// the relative embedding table then has 2·position_buckets rows.
	PositionBuckets int
	// PositionBiasedInput (position_biased_input; default true, DeBERTa-v3
	// false) adds absolute position embeddings to the input.
	PositionBiasedInput bool
	// PosAttType (pos_att_type; default none) lists the disentangled terms,
	// c2p and/or p2c; config.json may also write "p2c|c2p".
	PosAttType []string
	// ShareAttKey (share_att_key; default false) projects the relative
	// embeddings with query_proj / key_proj instead of pos_query_proj /
	// pos_key_proj.
	ShareAttKey bool
	// NormRelEbd (norm_rel_ebd; default "none") "layer_norm" normalises the
	// relative embedding table (encoder.LayerNorm).
	NormRelEbd string
	// EmbeddingSize (embedding_size; default hidden_size) != hidden_size
	// adds embeddings.embed_proj.
	EmbeddingSize int
	// PoolerHiddenAct (pooler_hidden_act; default gelu) is ContextPooler's
	// activation; PoolerDropout (pooler_dropout; default 0) its dropout.
	PoolerHiddenAct string
	PoolerDropout   float64
}

// parseDeberta reads DebertaV2Config (the sizes under BERT's names, and
// DebertaOptions).
func (c *Config) parseDeberta(r *reader) error {
	c.readBertSizes(r, bertSizes{vocab: 128100, hidden: 1536, layers: 24, heads: 24, inter: 6144, types: 0, eps: 1e-7})
	// DebertaV2ForSequenceClassification: cls_dropout, else hidden_dropout_prob
	c.ClassifierDropout = r.float("cls_dropout", c.EmbdDropout)
	if c.PadTokenID == nil {
		pad := 0
		c.PadTokenID = &pad
	}
	if c.NumHeads > 0 {
		c.HeadDim = r.int("attention_head_size", c.HiddenSize/c.NumHeads)
	}
	c.TieWordEmbeddings = r.bool("tie_word_embeddings", true)
	d := &c.DeBERTa
	d.RelativeAttention = r.bool("relative_attention", false)
	d.MaxRelativePositions = r.int("max_relative_positions", -1)
	d.PositionBuckets = r.int("position_buckets", -1)
	d.PositionBiasedInput = r.bool("position_biased_input", true)
	d.ShareAttKey = r.bool("share_att_key", false)
	d.NormRelEbd = r.str("norm_rel_ebd")
	if d.NormRelEbd == "" {
		d.NormRelEbd = "none"
	}
	d.EmbeddingSize = r.int("embedding_size", c.HiddenSize)
	d.PoolerHiddenAct = r.str("pooler_hidden_act")
	if d.PoolerHiddenAct == "" {
		d.PoolerHiddenAct = "gelu"
	}
	d.PoolerDropout = r.float("pooler_dropout", 0)
	switch v := r.raw["pos_att_type"].(type) {
	case nil:
	case string: // DebertaV2Config: "p2c|c2p" -> ["p2c", "c2p"]
		for _, x := range strings.Split(strings.ToLower(v), "|") {
			if x = strings.TrimSpace(x); x != "" {
				d.PosAttType = append(d.PosAttType, x)
			}
		}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return fmt.Errorf("pos_att_type: want a list of strings or a \"p2c|c2p\" string, got %v", v)
			}
			d.PosAttType = append(d.PosAttType, s)
		}
	default:
		return fmt.Errorf("pos_att_type: want a list of strings or a \"p2c|c2p\" string, got %v", v)
	}
	if k := r.int("conv_kernel_size", 0); k > 0 {
		return fmt.Errorf("conv_kernel_size %d: the ConvLayer of DeBERTa-v2 xlarge/xxlarge is not implemented (DeBERTa-v3 has none)", k)
	}
	if p := r.int("pooler_hidden_size", c.HiddenSize); p != c.HiddenSize {
		return fmt.Errorf("pooler_hidden_size %d: transformers' classifier reads hidden_size %d, so they must be equal", p, c.HiddenSize)
	}
	for _, a := range []struct{ key, v string }{{"hidden_act", c.HiddenAct}, {"pooler_hidden_act", d.PoolerHiddenAct}} {
		if _, ok := debertaActs[a.v]; !ok {
			return fmt.Errorf("%s %q: rl's deberta-v2 supports gelu, gelu_new, gelu_pytorch_tanh, relu and tanh", a.key, a.v)
		}
	}
	return nil
}

// validateDeberta checks what only DeBERTa-v2 has.
func (c *Config) validateDeberta() []error {
	var errs []error
	d := &c.DeBERTa
	for _, t := range d.PosAttType {
		if t != "c2p" && t != "p2c" {
			errs = append(errs, fmt.Errorf("pos_att_type %q: want c2p and/or p2c", t))
		}
	}
	if d.EmbeddingSize <= 0 || d.EmbeddingSize > maxDim {
		errs = append(errs, fmt.Errorf("embedding_size must be in [1, %d], got %d", maxDim, d.EmbeddingSize))
	}
	if d.RelativeAttention && (c.attSpan() <= 0 || c.attSpan() > maxDim) {
		errs = append(errs, fmt.Errorf("position_buckets %d / max_relative_positions %d: the relative span must be in [1, %d]", d.PositionBuckets, d.MaxRelativePositions, maxDim))
	}
	if !(d.PoolerDropout >= 0 && d.PoolerDropout < 1) {
		errs = append(errs, fmt.Errorf("pooler_dropout must be in [0, 1), got %g", d.PoolerDropout))
	}
	return errs
}

// debertaJSON writes the sizes and DebertaOptions under DebertaV2Config's names.
func (c *Config) debertaJSON(out map[string]any) {
	d := &c.DeBERTa
	c.writeBertSizes(out)
	if c.ClassifierDropout != c.EmbdDropout {
		out["cls_dropout"] = c.ClassifierDropout
	}
	if c.HeadDim != c.HiddenSize/c.NumHeads {
		out["attention_head_size"] = c.HeadDim
	}
	delete(out, "head_dim")
	out["relative_attention"] = d.RelativeAttention
	out["max_relative_positions"] = d.MaxRelativePositions
	out["position_buckets"] = d.PositionBuckets
	out["position_biased_input"] = d.PositionBiasedInput
	out["pos_att_type"] = append([]string{}, d.PosAttType...)
	out["share_att_key"] = d.ShareAttKey
	out["norm_rel_ebd"] = d.NormRelEbd
	if d.EmbeddingSize != c.HiddenSize {
		out["embedding_size"] = d.EmbeddingSize
	}
	out["pooler_hidden_size"] = c.HiddenSize
	out["pooler_hidden_act"] = d.PoolerHiddenAct
	out["pooler_dropout"] = d.PoolerDropout
	delete(out, "tie_word_embeddings")
	if !c.TieWordEmbeddings {
		out["tie_word_embeddings"] = false
	}
}

// maxRelative is max_relative_positions, or max_position_embeddings when < 1.
func (c *Config) maxRelative() int {
	if c.DeBERTa.MaxRelativePositions < 1 {
		return c.MaxPositions
	}
	return c.DeBERTa.MaxRelativePositions
}

// attSpan is pos_ebd_size: the relative embeddings used are 2·attSpan rows.
func (c *Config) attSpan() int {
	if c.DeBERTa.PositionBuckets > 0 {
		return c.DeBERTa.PositionBuckets
	}
	return c.maxRelative()
}

func (c *Config) posAtt(t string) bool { return slices.Contains(c.DeBERTa.PosAttType, t) }

// normRel reports norm_rel_ebd's layer_norm (DebertaV2Encoder.LayerNorm).
func (c *Config) normRel() bool {
	return slices.Contains(strings.Split(strings.ReplaceAll(strings.ToLower(c.DeBERTa.NormRelEbd), " ", ""), "|"), "layer_norm")
}

// RelativePositions is build_relative_position(T, T) for the config: the
// (T, T) relative positions RelativeBucket(q - k).
func (c *Config) RelativePositions(T int) []int64 {
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
func (c *Config) RelativeBucket(r int) int {
	buckets, maxPos := c.DeBERTa.PositionBuckets, c.maxRelative()
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

// debertaShapes lists DebertaV2Model's parameters and, for a score head,
// ContextPooler's and the classifier's.
func debertaShapes(c *Config, h Head, s map[string][]int64) {
	d := &c.DeBERTa
	H, I, V, K := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize), int64(c.NumLabels)
	E, A := int64(d.EmbeddingSize), int64(c.NumHeads*c.HeadDim)
	p := c.prefix()
	s[p+"embeddings.word_embeddings.weight"] = []int64{V, E}
	if d.PositionBiasedInput {
		s[p+"embeddings.position_embeddings.weight"] = []int64{int64(c.MaxPositions), E}
	}
	if c.TypeVocabSize > 0 {
		s[p+"embeddings.token_type_embeddings.weight"] = []int64{int64(c.TypeVocabSize), E}
	}
	if E != H {
		s[p+"embeddings.embed_proj.weight"] = []int64{H, E}
	}
	s[p+"embeddings.LayerNorm.weight"] = []int64{H}
	s[p+"embeddings.LayerNorm.bias"] = []int64{H}
	for i := 0; i < c.NumLayers; i++ {
		l := fmt.Sprintf("%sencoder.layer.%d.", p, i)
		proj := []string{"query_proj", "key_proj", "value_proj"}
		if d.RelativeAttention && !d.ShareAttKey {
			if c.posAtt("c2p") {
				proj = append(proj, "pos_key_proj")
			}
			if c.posAtt("p2c") {
				proj = append(proj, "pos_query_proj")
			}
		}
		bertLayerShapes(s, l, H, I, A, proj...)
	}
	if d.RelativeAttention {
		s[p+"encoder.rel_embeddings.weight"] = []int64{2 * int64(c.attSpan()), H}
	}
	if c.normRel() {
		s[p+"encoder.LayerNorm.weight"] = []int64{H}
		s[p+"encoder.LayerNorm.bias"] = []int64{H}
	}
	if h == ScoreHead {
		s["pooler.dense.weight"] = []int64{H, H}
		s["pooler.dense.bias"] = []int64{H}
		s["classifier.weight"] = []int64{K, H}
		s["classifier.bias"] = []int64{K}
	}
}

// debertaHeads are the top-level modules of DeBERTa-v2 checkpoints outside
// the base model: the classification head (pooler, classifier) and the
// pretraining heads (DebertaV2ForMaskedLM's lm_predictions, the ELECTRA-
// style discriminator's mask_predictions of DeBERTa-v3's released files).
var debertaHeads = []string{"pooler.", "classifier.", "lm_predictions.", "mask_predictions.", "cls."}

// debertaIgnorable: the pretraining heads, and the absolute position
// embeddings a checkpoint of position_biased_input false may still hold
// (transformers' _keys_to_ignore_on_load_unexpected).
func (c *Config) debertaIgnorable(name string) bool {
	for _, p := range debertaHeads[2:] {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return !c.DeBERTa.PositionBiasedInput && strings.HasSuffix(name, "embeddings.position_embeddings.weight")
}

var debertaActs = map[string]func(*tensor.Tensor) *tensor.Tensor{
	"gelu":              (*tensor.Tensor).Gelu,
	"gelu_new":          (*tensor.Tensor).GeluTanh,
	"gelu_pytorch_tanh": (*tensor.Tensor).GeluTanh,
	"relu":              (*tensor.Tensor).Relu,
	"tanh":              (*tensor.Tensor).Tanh,
}

// deberta is DebertaV2Model with DebertaV2ForSequenceClassification's head.
type deberta struct {
	wte, wpe, tte, embProj, lnW, lnB *tensor.Tensor
	layers                           []debertaLayer
	rel, relLnW, relLnB              *tensor.Tensor // encoder.rel_embeddings, encoder.LayerNorm (nil when absent)
	poolW, poolB, clsW, clsB         *tensor.Tensor // pooler.dense, classifier
}

// debertaLayer is BertLayer's tensors (q, k, v: attention.self.query_proj,
// key_proj, value_proj) and the relative-position projections.
type debertaLayer struct {
	bertLayer
	pkW, pkB, pqW, pqB *tensor.Tensor // attention.self.pos_key_proj/pos_query_proj (nil with share_att_key)
}

func (d *deberta) bind(m *Model) error {
	p, pre := m.byName, m.Config.prefix()
	d.wte = p[pre+"embeddings.word_embeddings.weight"]
	d.wpe = p[pre+"embeddings.position_embeddings.weight"]
	d.tte = p[pre+"embeddings.token_type_embeddings.weight"]
	d.embProj = p[pre+"embeddings.embed_proj.weight"]
	d.lnW, d.lnB = p[pre+"embeddings.LayerNorm.weight"], p[pre+"embeddings.LayerNorm.bias"]
	for i := 0; i < m.Config.NumLayers; i++ {
		n := func(s string) *tensor.Tensor { return p[fmt.Sprintf("%sencoder.layer.%d.%s", pre, i, s)] }
		sa := "attention.self."
		d.layers = append(d.layers, debertaLayer{
			bertLayer: bindBertLayer(n, "query_proj", "key_proj", "value_proj"),
			pkW:       n(sa + "pos_key_proj.weight"), pkB: n(sa + "pos_key_proj.bias"),
			pqW: n(sa + "pos_query_proj.weight"), pqB: n(sa + "pos_query_proj.bias"),
		})
	}
	d.rel = p[pre+"encoder.rel_embeddings.weight"]
	d.relLnW, d.relLnB = p[pre+"encoder.LayerNorm.weight"], p[pre+"encoder.LayerNorm.bias"]
	d.poolW, d.poolB = p["pooler.dense.weight"], p["pooler.dense.bias"]
	d.clsW, d.clsB = p["classifier.weight"], p["classifier.bias"]
	return nil
}

func (d *deberta) lmWeight(m *Model) *tensor.Tensor { panic(errNoLMHead) }

// hidden is DebertaV2Model's forward: embeddings (word + absolute
// positions when position_biased_input + token types, embed_proj,
// LayerNorm, times the mask), then the layers. Absolute positions count a
// row's real tokens (as BERT's here, bert.go); relative ones are index
// differences, which left padding does not change between real tokens.
func (d *deberta) hidden(m *Model, in *Input) *tensor.Tensor {
	checkEncoderInput(in)
	c := m.Config
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	dev := in.IDs.Device()
	x := tensor.Embedding(d.wte, in.IDs) // (B, T, E)
	if d.wpe != nil {
		x = x.Add(tensor.Embedding(d.wpe, positions(in, 0)))
	}
	if d.tte != nil {
		tt := in.TokenTypeIDs
		if tt == nil {
			tt = tensor.ZerosOn([]int64{B, T}, tensor.Int64, dev)
		}
		x = x.Add(tensor.Embedding(d.tte, tt))
	}
	if d.embProj != nil {
		x = x.Linear(d.embProj, nil)
	}
	x = x.LayerNorm(d.lnW, d.lnB, c.NormEps) // (B, T, H)
	ok := encoderMask(in)                    // keys (and segments)
	if in.AttentionMask != nil {
		real := in.AttentionMask.NeScalar(0)
		x = x.Mul(real.ToDType(x.DType()).Unsqueeze(2))
		// get_attention_mask: query and key both real (B, 1, T, T)
		ok = ok.LogicalAnd(real.Unsqueeze(1).Unsqueeze(3))
	}
	x = m.dropout(in, x, c.EmbdDropout)
	var relPos *tensor.Tensor
	if c.DeBERTa.RelativeAttention {
		relPos = tensor.FromInt64s(c.RelativePositions(int(T)), T, T).To(tensor.Int64, dev)
	}
	layer := func(l int, x *tensor.Tensor) *tensor.Tensor { return d.layer(m, in, &d.layers[l], x, ok, relPos) }
	return m.runLayers(in, x, len(d.layers), layer, ok, relPos)
}

// layer is DebertaV2Layer: disentangled self-attention (He et al. 2021,
// Eq. 4: content-to-content + content-to-position + position-to-content,
// each scaled by 1/sqrt(d·scale_factor), scale_factor = 1 + |pos_att_type|),
// XSoftmax over the allowed pairs, then the feed-forward block, each with
// dropout, a residual and post-LayerNorm.
func (d *deberta) layer(m *Model, in *Input, ly *debertaLayer, x, ok, relPos *tensor.Tensor) *tensor.Tensor {
	c := m.Config
	B, T := x.Size(0), x.Size(1)
	nh, hd := int64(c.NumHeads), int64(c.HeadDim)
	heads := func(t *tensor.Tensor) *tensor.Tensor { return t.View(t.Size(0), t.Size(1), nh, hd).Transpose(1, 2) } // (B, nh, T, d)
	q := heads(m.proj(in, x, ly.qW, ly.qB))
	k := heads(m.proj(in, x, ly.kW, ly.kB))
	v := heads(m.proj(in, x, ly.vW, ly.vB))
	sf := 1
	for _, t := range []string{"c2p", "p2c"} {
		if c.posAtt(t) {
			sf++
		}
	}
	// torch.sqrt(torch.tensor(d, dtype=float) * scale_factor): in float32
	scale := float64(float32(math.Sqrt(float64(int(hd) * sf))))
	att := q.Matmul(k.Transpose(-1, -2)).DivScalar(scale) // (B, nh, T, T)
	if c.DeBERTa.RelativeAttention && len(c.DeBERTa.PosAttType) > 0 {
		// get_rel_embedding (LayerNorm with norm_rel_ebd), pos_dropout,
		// the first 2·att_span rows; computed in each layer, so that a
		// checkpointed layer recomputes it from the parameters
		S := int64(c.attSpan())
		rel := d.rel
		if d.relLnW != nil {
			rel = rel.LayerNorm(d.relLnW, d.relLnB, c.NormEps)
		}
		rel = m.dropout(in, rel.Narrow(0, 0, 2*S), c.EmbdDropout).Unsqueeze(0) // (1, 2S, H)
		if c.posAtt("c2p") {
			w, b := ly.pkW, ly.pkB
			if c.DeBERTa.ShareAttKey {
				w, b = ly.kW, ly.kB
			}
			posKey := heads(m.proj(in, rel, w, b))                                             // (1, nh, 2S, d)
			c2p := q.Matmul(posKey.Transpose(-1, -2))                                          // (B, nh, T, 2S)
			idx := relPos.AddScalar(float64(S)).Clamp(0, float64(2*S-1)).ToDType(tensor.Int64) // (T, T)
			att = att.Add(c2p.Gather(-1, idx.Expand(B, nh, T, T)).DivScalar(scale))
		}
		if c.posAtt("p2c") {
			w, b := ly.pqW, ly.pqB
			if c.DeBERTa.ShareAttKey {
				w, b = ly.qW, ly.qB
			}
			posQuery := heads(m.proj(in, rel, w, b))                                                 // (1, nh, 2S, d)
			p2c := k.Matmul(posQuery.Transpose(-1, -2))                                              // (B, nh, T, 2S)
			idx := relPos.Neg().AddScalar(float64(S)).Clamp(0, float64(2*S-1)).ToDType(tensor.Int64) // (T, T)
			att = att.Add(p2c.Gather(-1, idx.Expand(B, nh, T, T)).Transpose(-1, -2).DivScalar(scale))
		}
	}
	var probs *tensor.Tensor
	if ok != nil { // XSoftmax: the dtype's minimum, softmax, then 0 where not allowed
		notOK := ok.LogicalNot()
		probs = att.MaskedFill(notOK, tensor.MinValue(att.DType())).Softmax(-1).MaskedFill(notOK, 0)
	} else {
		probs = att.Softmax(-1)
	}
	probs = m.dropout(in, probs, c.AttnDropout)
	ctx := probs.Matmul(v).Transpose(1, 2).Reshape(B, T, nh*hd)
	// DebertaV2SelfOutput, DebertaV2Intermediate, DebertaV2Output
	h := m.dropout(in, m.proj(in, ctx, ly.aoW, ly.aoB), c.ResidDropout).Add(x).LayerNorm(ly.aoLnW, ly.aoLnB, c.NormEps)
	inter := debertaActs[c.HiddenAct](m.proj(in, h, ly.inW, ly.inB))
	return m.dropout(in, m.proj(in, inter, ly.outW, ly.outB), c.ResidDropout).Add(h).LayerNorm(ly.outLnW, ly.outLnB, c.NormEps)
}

// scores is DebertaV2ForSequenceClassification's head at each position of
// h: ContextPooler (dropout(pooler_dropout), dense, pooler_hidden_act),
// dropout (cls_dropout, else hidden_dropout_prob), classifier. Read at the
// first token, as ContextPooler does.
func (d *deberta) scores(m *Model, in *Input, h *tensor.Tensor) *tensor.Tensor {
	c := m.Config
	x := m.dropout(in, h, c.DeBERTa.PoolerDropout).Linear(d.poolW, d.poolB)
	x = debertaActs[c.DeBERTa.PoolerHiddenAct](x)
	return m.dropout(in, x, c.ClassifierDropout).Linear(d.clsW, d.clsB)
}
