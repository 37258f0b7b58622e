package reference

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

type llamaBlock struct {
	inputNormW    []float64
	qW, kW, vW    *mat.Dense // [heads*hd, H], [kv*hd, H], [kv*hd, H]
	qB, kB, vB    []float64  // nil unless AttentionBias
	qNormW        []float64  // nil unless QKNorm
	kNormW        []float64
	oW            *mat.Dense // [H, heads*hd]
	postAttnNormW []float64
	gateW, upW    *mat.Dense // [I, H]
	downW         *mat.Dense // [H, I]
}

type llamaModel struct {
	d      dims
	eps    float64
	theta  float64
	inv    []float64 // rope inverse frequencies; nil: from theta
	window int       // sliding window; 0: none
	embed  *mat.Dense
	blocks []llamaBlock
	normW  []float64
	lmHead *mat.Dense
}

func loadLlama(cfg Config, d dims, w Weights) *llamaModel {
	m := &llamaModel{
		d:      d,
		eps:    cfg.Eps,
		theta:  cfg.RopeTheta,
		inv:    cfg.RopeInvFreq,
		window: cfg.SlidingWindow,
		embed:  matrix(w["model.embed_tokens.weight"]),
		normW:  vector(w["model.norm.weight"]),
	}
	for i := 0; i < d.L; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		blk := llamaBlock{
			inputNormW:    vector(w[p+"input_layernorm.weight"]),
			qW:            matrix(w[p+"self_attn.q_proj.weight"]),
			kW:            matrix(w[p+"self_attn.k_proj.weight"]),
			vW:            matrix(w[p+"self_attn.v_proj.weight"]),
			oW:            matrix(w[p+"self_attn.o_proj.weight"]),
			postAttnNormW: vector(w[p+"post_attention_layernorm.weight"]),
			gateW:         matrix(w[p+"mlp.gate_proj.weight"]),
			upW:           matrix(w[p+"mlp.up_proj.weight"]),
			downW:         matrix(w[p+"mlp.down_proj.weight"]),
		}
		if cfg.QKNorm {
			blk.qNormW = vector(w[p+"self_attn.q_norm.weight"])
			blk.kNormW = vector(w[p+"self_attn.k_norm.weight"])
		}
		if cfg.AttentionBias {
			blk.qB = vector(w[p+"self_attn.q_proj.bias"])
			blk.kB = vector(w[p+"self_attn.k_proj.bias"])
			blk.vB = vector(w[p+"self_attn.v_proj.bias"])
		}
		m.blocks = append(m.blocks, blk)
	}
	if cfg.TiedHead {
		m.lmHead = m.embed
	} else {
		m.lmHead = matrix(w["lm_head.weight"])
	}
	return m
}

func (m *llamaModel) head() *mat.Dense { return m.lmHead }

func (m *llamaModel) hidden(ids, mask []int) (*mat.Dense, error) {
	T, H, hd := len(ids), m.d.H, m.d.headDim
	group := m.d.heads / m.d.kvHeads // query heads per kv head
	pos := positionIDs(mask)

	// Token embedding only; positions enter through RoPE.
	x := mat.NewDense(T, H, nil)
	for t, id := range ids {
		for i := 0; i < H; i++ {
			x.Set(t, i, m.embed.At(id, i))
		}
	}

	// ropeRows rotates every row t of a [T, hd] head matrix by pos[t].
	ropeRows := func(a *mat.Dense) *mat.Dense {
		out := mat.NewDense(T, hd, nil)
		for t := 0; t < T; t++ {
			if m.inv != nil {
				out.SetRow(t, ropeFreq(a.RawRowView(t), pos[t], m.inv))
			} else {
				out.SetRow(t, rope(a.RawRowView(t), pos[t], m.theta))
			}
		}
		return out
	}

	for _, blk := range m.blocks {
		// Attention sub-block (pre-norm, residual).
		a := mapRows(x, func(r []float64) []float64 { return rmsNorm(r, blk.inputNormW, m.eps) })
		q := linear(a, blk.qW, blk.qB) // [T, heads*hd]
		k := linear(a, blk.kW, blk.kB) // [T, kv*hd]
		v := linear(a, blk.vW, blk.vB) // [T, kv*hd]
		heads := mat.NewDense(T, m.d.heads*hd, nil)
		for h := 0; h < m.d.heads; h++ {
			g := h / group // the kv head this query head reads
			qh, kh := columns(q, h*hd, (h+1)*hd), columns(k, g*hd, (g+1)*hd)
			if blk.qNormW != nil { // Qwen3: RMSNorm of each head before RoPE
				qh = mapRows(qh, func(r []float64) []float64 { return rmsNorm(r, blk.qNormW, m.eps) })
				kh = mapRows(kh, func(r []float64) []float64 { return rmsNorm(r, blk.kNormW, m.eps) })
			}
			qh, kh = ropeRows(qh), ropeRows(kh)
			vh := columns(v, g*hd, (g+1)*hd)
			setColumns(heads, h*hd, windowAttention(qh, kh, vh, mask, m.window))
		}
		x.Add(x, linear(heads, blk.oW, nil))

		// MLP sub-block (pre-norm, residual): down(silu(gate(n)) * up(n)).
		n := mapRows(x, func(r []float64) []float64 { return rmsNorm(r, blk.postAttnNormW, m.eps) })
		gate := linear(n, blk.gateW, nil)
		up := linear(n, blk.upW, nil)
		mapElements(gate, silu)
		gate.MulElem(gate, up)
		x.Add(x, linear(gate, blk.downW, nil))
	}

	return mapRows(x, func(r []float64) []float64 { return rmsNorm(r, m.normW, m.eps) }), nil
}
