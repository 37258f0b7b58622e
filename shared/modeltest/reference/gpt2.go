package reference

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

type gpt2Block struct {
	ln1W, ln1B []float64
	attnW      *mat.Dense // c_attn [H, 3H]
	attnB      []float64
	attnProjW  *mat.Dense // attn.c_proj [H, H]
	attnProjB  []float64
	ln2W, ln2B []float64
	fcW        *mat.Dense // mlp.c_fc [H, I]
	fcB        []float64
	mlpProjW   *mat.Dense // mlp.c_proj [I, H]
	mlpProjB   []float64
}

type gpt2Model struct {
	d          dims
	eps        float64
	wte, wpe   *mat.Dense
	blocks     []gpt2Block
	lnfW, lnfB []float64
	lmHead     *mat.Dense
	noScale    bool // scale_attn_weights false
	byLayer    bool // scale_attn_by_inverse_layer_idx
}

func loadGPT2(cfg Config, d dims, w Weights) *gpt2Model {
	m := &gpt2Model{
		d:       d,
		eps:     cfg.Eps,
		noScale: cfg.NoScaleAttnWeights,
		byLayer: cfg.ScaleAttnByInverseLayerIdx,
		wte:     matrix(w["transformer.wte.weight"]),
		wpe:     matrix(w["transformer.wpe.weight"]),
		lnfW:    vector(w["transformer.ln_f.weight"]),
		lnfB:    vector(w["transformer.ln_f.bias"]),
	}
	for i := 0; i < d.L; i++ {
		p := fmt.Sprintf("transformer.h.%d.", i)
		m.blocks = append(m.blocks, gpt2Block{
			ln1W:      vector(w[p+"ln_1.weight"]),
			ln1B:      vector(w[p+"ln_1.bias"]),
			attnW:     matrix(w[p+"attn.c_attn.weight"]),
			attnB:     vector(w[p+"attn.c_attn.bias"]),
			attnProjW: matrix(w[p+"attn.c_proj.weight"]),
			attnProjB: vector(w[p+"attn.c_proj.bias"]),
			ln2W:      vector(w[p+"ln_2.weight"]),
			ln2B:      vector(w[p+"ln_2.bias"]),
			fcW:       matrix(w[p+"mlp.c_fc.weight"]),
			fcB:       vector(w[p+"mlp.c_fc.bias"]),
			mlpProjW:  matrix(w[p+"mlp.c_proj.weight"]),
			mlpProjB:  vector(w[p+"mlp.c_proj.bias"]),
		})
	}
	if cfg.TiedHead {
		m.lmHead = m.wte
	} else {
		m.lmHead = matrix(w["lm_head.weight"])
	}
	return m
}

func (m *gpt2Model) head() *mat.Dense { return m.lmHead }

func (m *gpt2Model) hidden(ids, mask []int) (*mat.Dense, error) {
	T, H, hd := len(ids), m.d.H, m.d.headDim
	pos := positionIDs(mask)

	// Token embedding plus learned position embedding.
	x := mat.NewDense(T, H, nil)
	for t := range ids {
		if pos[t] >= m.d.P {
			return nil, fmt.Errorf("position id %d at index %d is outside MaxPositions %d", pos[t], t, m.d.P)
		}
		for i := 0; i < H; i++ {
			x.Set(t, i, m.wte.At(ids[t], i)+m.wpe.At(pos[t], i))
		}
	}

	for l, blk := range m.blocks {
		// scores = q·kᵀ/sqrt(hd) in attention; GPT2Config's flags change the
		// divisor: none without scale_attn_weights, times (l+1) with
		// scale_attn_by_inverse_layer_idx. Scaling q scales the scores.
		qs := 1.0
		if m.noScale {
			qs *= math.Sqrt(float64(hd))
		}
		if m.byLayer {
			qs /= float64(l + 1)
		}
		// Attention sub-block (pre-LN, residual).
		a := mapRows(x, func(r []float64) []float64 { return layerNorm(r, blk.ln1W, blk.ln1B, m.eps) })
		qkv := conv1D(a, blk.attnW, blk.attnB) // [T, 3H]: q | k | v
		q, k, v := columns(qkv, 0, H), columns(qkv, H, 2*H), columns(qkv, 2*H, 3*H)
		heads := mat.NewDense(T, H, nil)
		for h := 0; h < m.d.heads; h++ {
			lo, hi := h*hd, (h+1)*hd
			qh := columns(q, lo, hi)
			qh.Scale(qs, qh)
			setColumns(heads, lo, attention(qh, columns(k, lo, hi), columns(v, lo, hi), mask))
		}
		x.Add(x, conv1D(heads, blk.attnProjW, blk.attnProjB))

		// MLP sub-block (pre-LN, residual).
		n := mapRows(x, func(r []float64) []float64 { return layerNorm(r, blk.ln2W, blk.ln2B, m.eps) })
		f := conv1D(n, blk.fcW, blk.fcB)
		mapElements(f, geluTanh)
		x.Add(x, conv1D(f, blk.mlpProjW, blk.mlpProjB))
	}

	return mapRows(x, func(r []float64) []float64 { return layerNorm(r, m.lnfW, m.lnfB, m.eps) }), nil
}
