package model

import (
	"fmt"
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// gpt2 is GPT2Model: learned positions, pre-LN blocks with LayerNorm, fused
// qkv Conv1D (weights stored (in, out)), GELU-tanh MLP, final LayerNorm,
// LM head tied to wte unless lm_head.weight is present.
type gpt2 struct {
	wte, wpe, lnfW, lnfB *tensor.Tensor
	blocks               []gpt2Block
}

type gpt2Block struct {
	ln1W, ln1B, attnW, attnB, projW, projB *tensor.Tensor
	ln2W, ln2B, fcW, fcB, fcProjW, fcProjB *tensor.Tensor
}

func (g *gpt2) bind(m *Model) error {
	p := m.byName
	g.wte, g.wpe = p["transformer.wte.weight"], p["transformer.wpe.weight"]
	g.lnfW, g.lnfB = p["transformer.ln_f.weight"], p["transformer.ln_f.bias"]
	for i := 0; i < m.Config.NumLayers; i++ {
		n := func(s string) *tensor.Tensor { return p[fmt.Sprintf("transformer.h.%d.%s", i, s)] }
		g.blocks = append(g.blocks, gpt2Block{
			ln1W: n("ln_1.weight"), ln1B: n("ln_1.bias"),
			attnW: n("attn.c_attn.weight"), attnB: n("attn.c_attn.bias"),
			projW: n("attn.c_proj.weight"), projB: n("attn.c_proj.bias"),
			ln2W: n("ln_2.weight"), ln2B: n("ln_2.bias"),
			fcW: n("mlp.c_fc.weight"), fcB: n("mlp.c_fc.bias"),
			fcProjW: n("mlp.c_proj.weight"), fcProjB: n("mlp.c_proj.bias"),
		})
	}
	return nil
}

func (g *gpt2) lmWeight(m *Model) *tensor.Tensor {
	if w := m.byName["lm_head.weight"]; w != nil {
		return w
	}
	return g.wte
}

// conv1d is Hugging Face's Conv1D: x @ w + b with w (in, out), as one
// addmm over the flattened rows (what transformers does). Unlike
// linear(x, w^T), its weight gradient x^T @ grad comes out in w's own
// layout, with no strided accumulation into w.grad.
func conv1d(x, w, b *tensor.Tensor) *tensor.Tensor {
	shape := x.Shape()
	in, out := shape[len(shape)-1], w.Size(1)
	shape[len(shape)-1] = out
	if b == nil {
		return x.Reshape(-1, in).Matmul(w).View(shape...)
	}
	return b.Addmm(x.Reshape(-1, in), w).View(shape...)
}

// gpt2Scale is GPT2Config's attention scale for layer l: 1/sqrt(head_dim)
// with scale_attn_weights (the default), and 1/(layer_idx + 1) more with
// scale_attn_by_inverse_layer_idx (reorder_and_upcast_attn only changes
// half-precision rounding: rl's scores are float32 already).
func gpt2Scale(c *Config, l int, hd int64) float64 {
	s := 1.0
	if c.ScaleAttnWeights {
		s /= math.Sqrt(float64(hd))
	}
	if c.ScaleAttnByInverseLayerIdx {
		s /= float64(l + 1)
	}
	return s
}

func (g *gpt2) hidden(m *Model, in *Input) *tensor.Tensor {
	c := m.Config
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	H, nh := int64(c.HiddenSize), int64(c.NumHeads)
	hd := H / nh
	past := in.Cache.Len()
	pos := positions(in, past)
	ok := allowed(in, past, 0)
	x := tensor.Embedding(g.wte, in.IDs).Add(tensor.Embedding(g.wpe, pos)) // (B, T, H)
	// transformers' GPT2: dropout after the embeddings (embd_pdrop), on the
	// attention probabilities (attn_pdrop), after each residual branch
	// (resid_pdrop)
	x = m.dropout(in, x, c.EmbdDropout)
	layer := func(l int, x *tensor.Tensor) *tensor.Tensor {
		blk := g.blocks[l]
		h := x.LayerNorm(blk.ln1W, blk.ln1B, c.NormEps)
		qkv := m.proj(in, h, blk.attnW, blk.attnB) // (B, T, 3H)
		parts := qkv.Split(H, 2)
		q := parts[0].View(B, T, nh, hd).Transpose(1, 2) // (B, nh, T, hd)
		k := parts[1].View(B, T, nh, hd).Transpose(1, 2)
		v := parts[2].View(B, T, nh, hd).Transpose(1, 2)
		if in.Cache != nil {
			k, v = in.Cache.append(l, k, v)
		}
		a := m.attention(in, l, q, k, v, ok, 1, gpt2Scale(c, l, hd))
		x = x.Add(m.dropout(in, m.proj(in, a, blk.projW, blk.projB), c.ResidDropout))
		h = x.LayerNorm(blk.ln2W, blk.ln2B, c.NormEps)
		h = m.geluTanh(in, m.proj(in, h, blk.fcW, blk.fcB))
		return x.Add(m.dropout(in, m.proj(in, h, blk.fcProjW, blk.fcProjB), c.ResidDropout))
	}
	x = m.runLayers(in, x, len(g.blocks), layer, ok)
	return x.LayerNorm(g.lnfW, g.lnfB, c.NormEps)
}
