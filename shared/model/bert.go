package model

import (
	"fmt"

	"github.com/rlsuite/rl/shared/tensor"
)

// bert is BertModel (Devlin et al. 2019, arXiv:1810.04805; transformers'
// modeling_bert.py) and, with RoBERTa's positions and head (roberta.go),
// RobertaModel: word + position + token-type embeddings, LayerNorm,
// post-LN layers (self-attention, then a GELU MLP, each added to its input
// and normalised), bidirectional attention over the non-pad keys.
// BertForSequenceClassification reads the pooler (tanh(dense) of [CLS])
// through dropout and `classifier`.
type bert struct {
	wte, wpe, tte, lnW, lnB *tensor.Tensor
	layers                  []bertLayer
	poolW, poolB            *tensor.Tensor // bert.pooler.dense (nil for RoBERTa)
	clsW, clsB              *tensor.Tensor // classifier (BERT), classifier.out_proj (RoBERTa)
	denseW, denseB          *tensor.Tensor // classifier.dense (RoBERTa)
}

type bertLayer struct {
	qW, qB, kW, kB, vW, vB *tensor.Tensor // attention.self.query/key/value
	aoW, aoB, aoLnW, aoLnB *tensor.Tensor // attention.output.dense, .LayerNorm
	inW, inB               *tensor.Tensor // intermediate.dense
	outW, outB             *tensor.Tensor // output.dense
	outLnW, outLnB         *tensor.Tensor // output.LayerNorm
}

// bertShapes lists BertModel's (or RobertaModel's) parameters and the
// sequence-classification head's.
func bertShapes(c *Config, h Head, s map[string][]int64) {
	H, I, V, K := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize), int64(c.NumLabels)
	p := c.prefix()
	s[p+"embeddings.word_embeddings.weight"] = []int64{V, H}
	s[p+"embeddings.position_embeddings.weight"] = []int64{int64(c.MaxPositions), H}
	if c.TypeVocabSize > 0 {
		s[p+"embeddings.token_type_embeddings.weight"] = []int64{int64(c.TypeVocabSize), H}
	}
	s[p+"embeddings.LayerNorm.weight"] = []int64{H}
	s[p+"embeddings.LayerNorm.bias"] = []int64{H}
	for i := 0; i < c.NumLayers; i++ {
		bertLayerShapes(s, fmt.Sprintf("%sencoder.layer.%d.", p, i), H, I, H, "query", "key", "value")
	}
	if h != ScoreHead {
		return
	}
	if c.Family() == RoBERTa {
		// RobertaForSequenceClassification: no pooler, RobertaClassificationHead
		s["classifier.dense.weight"] = []int64{H, H}
		s["classifier.dense.bias"] = []int64{H}
		s["classifier.out_proj.weight"] = []int64{K, H}
		s["classifier.out_proj.bias"] = []int64{K}
		return
	}
	s[p+"pooler.dense.weight"] = []int64{H, H}
	s[p+"pooler.dense.bias"] = []int64{H}
	s["classifier.weight"] = []int64{K, H}
	s["classifier.bias"] = []int64{K}
}

// bertLayerShapes adds BertLayer's parameters under prefix l: the
// attention.self projections named (each (A, H), A = heads·head size),
// attention.output.dense (H, A), the (H, I) MLP and the two LayerNorms.
func bertLayerShapes(s map[string][]int64, l string, H, I, A int64, self ...string) {
	for _, n := range self {
		s[l+"attention.self."+n+".weight"] = []int64{A, H}
		s[l+"attention.self."+n+".bias"] = []int64{A}
	}
	s[l+"attention.output.dense.weight"] = []int64{H, A}
	s[l+"attention.output.dense.bias"] = []int64{H}
	s[l+"intermediate.dense.weight"] = []int64{I, H}
	s[l+"intermediate.dense.bias"] = []int64{I}
	s[l+"output.dense.weight"] = []int64{H, I}
	s[l+"output.dense.bias"] = []int64{H}
	for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
		s[l+n+".weight"] = []int64{H}
		s[l+n+".bias"] = []int64{H}
	}
}

func (b *bert) bind(m *Model) error {
	p := m.byName
	pre := m.Config.prefix()
	b.wte = p[pre+"embeddings.word_embeddings.weight"]
	b.wpe = p[pre+"embeddings.position_embeddings.weight"]
	b.tte = p[pre+"embeddings.token_type_embeddings.weight"]
	b.lnW, b.lnB = p[pre+"embeddings.LayerNorm.weight"], p[pre+"embeddings.LayerNorm.bias"]
	for i := 0; i < m.Config.NumLayers; i++ {
		n := func(s string) *tensor.Tensor { return p[fmt.Sprintf("%sencoder.layer.%d.%s", pre, i, s)] }
		b.layers = append(b.layers, bindBertLayer(n, "query", "key", "value"))
	}
	if m.Config.Family() == RoBERTa {
		b.denseW, b.denseB = p["classifier.dense.weight"], p["classifier.dense.bias"]
		b.clsW, b.clsB = p["classifier.out_proj.weight"], p["classifier.out_proj.bias"]
	} else {
		b.poolW, b.poolB = p[pre+"pooler.dense.weight"], p[pre+"pooler.dense.bias"]
		b.clsW, b.clsB = p["classifier.weight"], p["classifier.bias"]
	}
	return nil
}

// bindBertLayer binds BertLayer's tensors (and DeBERTa's, whose
// projections are query_proj, key_proj, value_proj) of one layer, n giving
// a tensor by its name inside the layer.
func bindBertLayer(n func(string) *tensor.Tensor, q, k, v string) bertLayer {
	sa := "attention.self."
	return bertLayer{
		qW: n(sa + q + ".weight"), qB: n(sa + q + ".bias"),
		kW: n(sa + k + ".weight"), kB: n(sa + k + ".bias"),
		vW: n(sa + v + ".weight"), vB: n(sa + v + ".bias"),
		aoW: n("attention.output.dense.weight"), aoB: n("attention.output.dense.bias"),
		aoLnW: n("attention.output.LayerNorm.weight"), aoLnB: n("attention.output.LayerNorm.bias"),
		inW: n("intermediate.dense.weight"), inB: n("intermediate.dense.bias"),
		outW: n("output.dense.weight"), outB: n("output.dense.bias"),
		outLnW: n("output.LayerNorm.weight"), outLnB: n("output.LayerNorm.bias"),
	}
}

// lmWeight: an encoder has no LM head (New and Load refuse LMHead).
func (b *bert) lmWeight(m *Model) *tensor.Tensor { panic(errNoLMHead) }

func (b *bert) hidden(m *Model, in *Input) *tensor.Tensor {
	checkEncoderInput(in)
	c := m.Config
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	var pos *tensor.Tensor
	if c.Family() == RoBERTa {
		pos = robertaPositions(c, in)
	} else {
		// BertEmbeddings' arange, except that a row's positions count its
		// real tokens (cumsum of the mask, as decoders here do): equal to
		// transformers' for right padding, and left padding does not shift
		// a row (a reward model scoring left-padded queries).
		pos = positions(in, 0)
	}
	x := tensor.Embedding(b.wte, in.IDs).Add(tensor.Embedding(b.wpe, pos))
	if b.tte != nil {
		tt := in.TokenTypeIDs
		if tt == nil || c.TypeVocabSize < 2 {
			// RoBERTa's single type: its tokenizer returns no
			// token_type_ids (RobertaProcessing's 1s never reach the model)
			tt = tensor.ZerosOn([]int64{B, T}, tensor.Int64, in.IDs.Device())
		}
		x = x.Add(tensor.Embedding(b.tte, tt))
	}
	x = m.dropout(in, x.LayerNorm(b.lnW, b.lnB, c.NormEps), c.EmbdDropout)
	ok := encoderMask(in)
	H, nh := int64(c.HiddenSize), int64(c.NumHeads)
	hd := H / nh
	scale := encoderScale(c)
	layer := func(l int, x *tensor.Tensor) *tensor.Tensor {
		ly := b.layers[l]
		heads := func(t *tensor.Tensor) *tensor.Tensor { return t.View(B, T, nh, hd).Transpose(1, 2) } // (B, nh, T, hd)
		q := heads(m.proj(in, x, ly.qW, ly.qB))
		k := heads(m.proj(in, x, ly.kW, ly.kB))
		v := heads(m.proj(in, x, ly.vW, ly.vB))
		a := m.attention(in, l, q, k, v, ok, 1, scale) // BertSelfAttention
		// BertSelfOutput: LayerNorm(dropout(dense(a)) + x)
		a = m.dropout(in, m.proj(in, a, ly.aoW, ly.aoB), c.ResidDropout).Add(x).LayerNorm(ly.aoLnW, ly.aoLnB, c.NormEps)
		// BertIntermediate, BertOutput
		h := act(c, m.proj(in, a, ly.inW, ly.inB))
		return m.dropout(in, m.proj(in, h, ly.outW, ly.outB), c.ResidDropout).Add(a).LayerNorm(ly.outLnW, ly.outLnB, c.NormEps)
	}
	return m.runLayers(in, x, len(b.layers), layer, ok)
}

// scores is BertForSequenceClassification's head, classifier(dropout(
// tanh(pooler.dense(h)))), or RobertaClassificationHead's,
// out_proj(dropout(tanh(dense(dropout(h))))), at each position of h.
func (b *bert) scores(m *Model, in *Input, h *tensor.Tensor) *tensor.Tensor {
	p := m.Config.ClassifierDropout
	if b.denseW != nil {
		x := m.dropout(in, h, p).Linear(b.denseW, b.denseB).Tanh()
		return m.dropout(in, x, p).Linear(b.clsW, b.clsB)
	}
	pooled := h.Linear(b.poolW, b.poolB).Tanh()
	return m.dropout(in, pooled, p).Linear(b.clsW, b.clsB)
}
