package model

import (
	"fmt"

	"github.com/rlsuite/rl/shared/tensor"
)

// distilbert is DistilBertModel (Sanh et al. 2019, arXiv:1910.01108;
// transformers' modeling_distilbert.py): word + position embeddings (no
// token types), LayerNorm (eps 1e-12), post-LN layers of q_lin/k_lin/
// v_lin/out_lin attention and a lin1/lin2 MLP.
// DistilBertForSequenceClassification reads the [CLS] hidden state through
// pre_classifier, ReLU, dropout (seq_classif_dropout) and classifier.
type distilbert struct {
	wte, wpe, lnW, lnB *tensor.Tensor
	layers             []distilLayer
	preW, preB         *tensor.Tensor // pre_classifier
	clsW, clsB         *tensor.Tensor // classifier
}

type distilLayer struct {
	qW, qB, kW, kB, vW, vB, oW, oB *tensor.Tensor // attention.q_lin, k_lin, v_lin, out_lin
	saLnW, saLnB                   *tensor.Tensor // sa_layer_norm
	l1W, l1B, l2W, l2B             *tensor.Tensor // ffn.lin1, ffn.lin2
	outLnW, outLnB                 *tensor.Tensor // output_layer_norm
}

func distilbertShapes(c *Config, h Head, s map[string][]int64) {
	H, I, V, K := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize), int64(c.NumLabels)
	s["distilbert.embeddings.word_embeddings.weight"] = []int64{V, H}
	s["distilbert.embeddings.position_embeddings.weight"] = []int64{int64(c.MaxPositions), H}
	s["distilbert.embeddings.LayerNorm.weight"] = []int64{H}
	s["distilbert.embeddings.LayerNorm.bias"] = []int64{H}
	for i := 0; i < c.NumLayers; i++ {
		l := fmt.Sprintf("distilbert.transformer.layer.%d.", i)
		for _, n := range []string{"q_lin", "k_lin", "v_lin", "out_lin"} {
			s[l+"attention."+n+".weight"] = []int64{H, H}
			s[l+"attention."+n+".bias"] = []int64{H}
		}
		s[l+"ffn.lin1.weight"] = []int64{I, H}
		s[l+"ffn.lin1.bias"] = []int64{I}
		s[l+"ffn.lin2.weight"] = []int64{H, I}
		s[l+"ffn.lin2.bias"] = []int64{H}
		for _, n := range []string{"sa_layer_norm", "output_layer_norm"} {
			s[l+n+".weight"] = []int64{H}
			s[l+n+".bias"] = []int64{H}
		}
	}
	if h == ScoreHead {
		s["pre_classifier.weight"] = []int64{H, H}
		s["pre_classifier.bias"] = []int64{H}
		s["classifier.weight"] = []int64{K, H}
		s["classifier.bias"] = []int64{K}
	}
}

func (d *distilbert) bind(m *Model) error {
	p := m.byName
	d.wte = p["distilbert.embeddings.word_embeddings.weight"]
	d.wpe = p["distilbert.embeddings.position_embeddings.weight"]
	d.lnW, d.lnB = p["distilbert.embeddings.LayerNorm.weight"], p["distilbert.embeddings.LayerNorm.bias"]
	for i := 0; i < m.Config.NumLayers; i++ {
		n := func(s string) *tensor.Tensor { return p[fmt.Sprintf("distilbert.transformer.layer.%d.%s", i, s)] }
		d.layers = append(d.layers, distilLayer{
			qW: n("attention.q_lin.weight"), qB: n("attention.q_lin.bias"),
			kW: n("attention.k_lin.weight"), kB: n("attention.k_lin.bias"),
			vW: n("attention.v_lin.weight"), vB: n("attention.v_lin.bias"),
			oW: n("attention.out_lin.weight"), oB: n("attention.out_lin.bias"),
			saLnW: n("sa_layer_norm.weight"), saLnB: n("sa_layer_norm.bias"),
			l1W: n("ffn.lin1.weight"), l1B: n("ffn.lin1.bias"),
			l2W: n("ffn.lin2.weight"), l2B: n("ffn.lin2.bias"),
			outLnW: n("output_layer_norm.weight"), outLnB: n("output_layer_norm.bias"),
		})
	}
	d.preW, d.preB = p["pre_classifier.weight"], p["pre_classifier.bias"]
	d.clsW, d.clsB = p["classifier.weight"], p["classifier.bias"]
	return nil
}

func (d *distilbert) lmWeight(m *Model) *tensor.Tensor { panic(errNoLMHead) }

func (d *distilbert) hidden(m *Model, in *Input) *tensor.Tensor {
	checkEncoderInput(in)
	c := m.Config
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	// positions: as BERT's (bert.go), the mask's cumsum
	x := tensor.Embedding(d.wte, in.IDs).Add(tensor.Embedding(d.wpe, positions(in, 0)))
	x = m.dropout(in, x.LayerNorm(d.lnW, d.lnB, c.NormEps), c.EmbdDropout)
	ok := encoderMask(in)
	H, nh := int64(c.HiddenSize), int64(c.NumHeads)
	hd := H / nh
	scale := encoderScale(c)
	layer := func(l int, x *tensor.Tensor) *tensor.Tensor {
		ly := d.layers[l]
		heads := func(t *tensor.Tensor) *tensor.Tensor { return t.View(B, T, nh, hd).Transpose(1, 2) }
		q := heads(m.proj(in, x, ly.qW, ly.qB))
		k := heads(m.proj(in, x, ly.kW, ly.kB))
		v := heads(m.proj(in, x, ly.vW, ly.vB))
		a := m.attention(in, l, q, k, v, ok, 1, scale) // MultiHeadSelfAttention
		sa := m.proj(in, a, ly.oW, ly.oB).Add(x).LayerNorm(ly.saLnW, ly.saLnB, c.NormEps)
		// FFN: lin2(act(lin1(x))) with dropout, then output_layer_norm
		h := m.proj(in, act(c, m.proj(in, sa, ly.l1W, ly.l1B)), ly.l2W, ly.l2B)
		return m.dropout(in, h, c.ResidDropout).Add(sa).LayerNorm(ly.outLnW, ly.outLnB, c.NormEps)
	}
	return m.runLayers(in, x, len(d.layers), layer, ok)
}

// scores is DistilBertForSequenceClassification's head at each position of h.
func (d *distilbert) scores(m *Model, in *Input, h *tensor.Tensor) *tensor.Tensor {
	x := h.Linear(d.preW, d.preB).Relu()
	return m.dropout(in, x, m.Config.ClassifierDropout).Linear(d.clsW, d.clsB)
}
