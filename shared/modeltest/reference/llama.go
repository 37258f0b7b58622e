package reference

import (
	"fmt"
	"math"

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
	preFFNormW    []float64 // Gemma 2
	postFFNormW   []float64
	gateW, upW    *mat.Dense // [I, H]
	downW         *mat.Dense // [H, I]
}

type llamaModel struct {
	d      dims
	eps    float64
	theta  float64
	inv    []float64 // rope inverse frequencies; nil: from theta
	window int       // sliding window; 0: none
	cfg    Config
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
		cfg:    cfg,
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
		if cfg.Gemma {
			blk.preFFNormW = vector(w[p+"pre_feedforward_layernorm.weight"])
			blk.postFFNormW = vector(w[p+"post_feedforward_layernorm.weight"])
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
	if m.cfg.Gemma {
		return m.gemmaHidden(ids, mask)
	}
	return m.llamaHidden(ids, mask)
}

// gemmaHidden is Gemma2Model's forward for one sequence.
func (m *llamaModel) gemmaHidden(ids, mask []int) (*mat.Dense, error) {
	c := m.cfg
	T, H, hd := len(ids), m.d.H, m.d.headDim
	group := m.d.heads / m.d.kvHeads
	pos := positionIDs(mask)
	norm := func(x *mat.Dense, w []float64) *mat.Dense {
		one := make([]float64, len(w))
		for i, v := range w {
			one[i] = 1 + v
		}
		return mapRows(x, func(r []float64) []float64 { return rmsNorm(r, one, m.eps) })
	}
	normalizer := float64(float32(math.Sqrt(float64(H))))
	x := mat.NewDense(T, H, nil)
	for t, id := range ids {
		for i := 0; i < H; i++ {
			x.Set(t, i, m.embed.At(id, i)*normalizer)
		}
	}
	for l, blk := range m.blocks {
		sliding := l%2 == 0
		if c.LayerSliding != nil {
			sliding = c.LayerSliding[l]
		}
		window := 0
		if sliding {
			window = c.SlidingWindow
		}
		// the rotary frequencies of this layer
		inv := m.inv
		if inv == nil {
			inv = ropeInvFreq(hd, m.theta)
		}
		amp := m.amp()
		if sliding && c.LocalRopeTheta > 0 {
			inv, amp = ropeInvFreq(hd, c.LocalRopeTheta), 1
		}
		ropeRows := func(a *mat.Dense) *mat.Dense {
			out := mat.NewDense(T, hd, nil)
			for t := 0; t < T; t++ {
				out.SetRow(t, ropeScaled(a.RawRowView(t), pos[t], inv, amp))
			}
			return out
		}
		a := norm(x, blk.inputNormW)
		q, k, v := linear(a, blk.qW, nil), linear(a, blk.kW, nil), linear(a, blk.vW, nil)
		heads := mat.NewDense(T, m.d.heads*hd, nil)
		for h := 0; h < m.d.heads; h++ {
			g := h / group
			qh, kh, vh := columns(q, h*hd, (h+1)*hd), columns(k, g*hd, (g+1)*hd), columns(v, g*hd, (g+1)*hd)
			if blk.qNormW != nil { // Gemma 3: (1 + w) RMSNorm of each head, before RoPE
				qh, kh = norm(qh, blk.qNormW), norm(kh, blk.kNormW)
			}
			qh, kh = ropeRows(qh), ropeRows(kh)
			// scores: q·k / sqrt(query_pre_attn_scalar), soft-capped, masked
			probs := mat.NewDense(T, T, nil)
			for t := 0; t < T; t++ {
				row := make([]float64, T)
				for j := range row {
					s := mat.Dot(qh.RowView(t), kh.RowView(j)) / math.Sqrt(c.QueryPreAttnScalar)
					if c.AttnSoftcap > 0 {
						s = math.Tanh(s/c.AttnSoftcap) * c.AttnSoftcap
					}
					if j <= t && mask[j] == 1 && (window == 0 || t-j < window) {
						row[j] = s
					} else {
						row[j] = maskValue
					}
				}
				probs.SetRow(t, softmax(row))
			}
			var o mat.Dense
			o.Mul(probs, vh)
			setColumns(heads, h*hd, &o)
		}
		x.Add(x, norm(linear(heads, blk.oW, nil), blk.postAttnNormW))
		n := norm(x, blk.preFFNormW)
		gate := linear(n, blk.gateW, nil)
		up := linear(n, blk.upW, nil)
		mapElements(gate, geluTanh)
		gate.MulElem(gate, up)
		x.Add(x, norm(linear(gate, blk.downW, nil), blk.postFFNormW))
	}
	return norm(x, m.normW), nil
}

func (m *llamaModel) llamaHidden(ids, mask []int) (*mat.Dense, error) {
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
				out.SetRow(t, ropeScaled(a.RawRowView(t), pos[t], m.inv, m.amp()))
			} else {
				out.SetRow(t, rope(a.RawRowView(t), pos[t], m.theta))
			}
		}
		return out
	}

	for l, blk := range m.blocks {
		window := m.window // Qwen2's layer_types: the window on sliding layers only
		if m.cfg.LayerSliding != nil && !m.cfg.LayerSliding[l] {
			window = 0
		}
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
			setColumns(heads, h*hd, windowAttention(qh, kh, vh, mask, window))
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

// amp is the factor on cos and sin (Config.RopeAttentionFactor; 0: 1).
func (m *llamaModel) amp() float64 {
	if m.cfg.RopeAttentionFactor == 0 {
		return 1
	}
	return m.cfg.RopeAttentionFactor
}
