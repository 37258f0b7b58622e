package model

import (
	"fmt"
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// llama is LlamaModel (also Mistral, Qwen2, SmolLM, TinyLlama shapes):
// rotary positions (rotate_half convention), RMSNorm, SwiGLU MLP,
// grouped-query attention, optional q/k/v biases, optional tied head.
type llama struct {
	embed, norm *tensor.Tensor
	blocks      []llamaBlock
	// rotary inverse frequencies (RotaryDim/2, float32), owned; nil when
	// they depend on the sequence length (dynamic, longrope)
	invFreq *tensor.Tensor
	// Gemma 3's sliding layers: the local rotary base; nil otherwise
	invFreqLocal *tensor.Tensor
}

type llamaBlock struct {
	inNorm, postNorm  *tensor.Tensor
	preFF, postFF     *tensor.Tensor // Gemma 2; nil otherwise
	q, k, v, o        *tensor.Tensor
	qb, kb, vb, ob    *tensor.Tensor
	gate, up, down    *tensor.Tensor
	gateB, upB, downB *tensor.Tensor
	qNorm, kNorm      *tensor.Tensor // Qwen3; nil otherwise
	qkv, gateUp       *tensor.Tensor // Phi3's fused projections; nil otherwise
}

func (l *llama) bind(m *Model) error {
	p := m.byName
	c := m.Config
	l.embed, l.norm = p["model.embed_tokens.weight"], p["model.norm.weight"]
	for i := 0; i < c.NumLayers; i++ {
		n := func(s string) *tensor.Tensor { return p[fmt.Sprintf("model.layers.%d.%s", i, s)] }
		l.blocks = append(l.blocks, llamaBlock{
			inNorm: n("input_layernorm.weight"), postNorm: n("post_attention_layernorm.weight"),
			q: n("self_attn.q_proj.weight"), k: n("self_attn.k_proj.weight"),
			v: n("self_attn.v_proj.weight"), o: n("self_attn.o_proj.weight"),
			qb: n("self_attn.q_proj.bias"), kb: n("self_attn.k_proj.bias"),
			vb: n("self_attn.v_proj.bias"), ob: n("self_attn.o_proj.bias"),
			gate: n("mlp.gate_proj.weight"), up: n("mlp.up_proj.weight"), down: n("mlp.down_proj.weight"),
			gateB: n("mlp.gate_proj.bias"), upB: n("mlp.up_proj.bias"), downB: n("mlp.down_proj.bias"),
			qNorm: n("self_attn.q_norm.weight"), kNorm: n("self_attn.k_norm.weight"),
			qkv: n("self_attn.qkv_proj.weight"), gateUp: n("mlp.gate_up_proj.weight"),
			preFF: n("pre_feedforward_layernorm.weight"), postFF: n("post_feedforward_layernorm.weight"),
		})
	}
	// inv_freq[j] = theta^(-2j/d), scaled per rope_scaling; cos and sin
	// are computed from it in each forward, as transformers' RotaryEmbedding
	if !c.ropeLengthDependent() {
		l.invFreq = invFreqTensor(m, c.RopeInvFreq())
	}
	if c.LocalRopeTheta > 0 {
		local := *c
		local.RopeTheta, local.RopeScaling = c.LocalRopeTheta, nil
		l.invFreqLocal = invFreqTensor(m, local.RopeInvFreq())
	}
	return nil
}

func invFreqTensor(m *Model, inv []float64) *tensor.Tensor {
	f := make([]float32, len(inv))
	for i, v := range inv {
		f[i] = float32(v)
	}
	var t *tensor.Tensor
	tensor.Tidy(func() { t = tensor.FromFloat32s(f, int64(len(f))).To(tensor.Float32, m.Device).Keep() })
	return t
}

// ropeCosSin returns cos and sin (B, 1, T, RotaryDim) in the model's dtype
// for positions pos (B, T), as transformers' RotaryEmbedding.forward:
// angles pos * inv_freq in float32, duplicated as cat(freqs, freqs), cos and
// sin times the attention factor (yarn, longrope), cast to the dtype.
// inv nil: computed for this pass's length (dynamic, longrope: seq_len is
// the largest position + 1, as the dynamic_rope_update decorator reads it).
func (l *llama) ropeCosSin(m *Model, pos, inv *tensor.Tensor, amp float64) (cos, sin *tensor.Tensor) {
	c := m.Config
	B, T := pos.Size(0), pos.Size(1)
	if inv == nil {
		seqLen := int(pos.Max().Item()) + 1
		inv = invFreqTensor(m, c.RopeInvFreqAt(seqLen))
		defer inv.Free()
	}
	half := inv.Size(0)
	angle := pos.ToDType(tensor.Float32).Unsqueeze(-1).Mul(inv.View(1, 1, half)) // (B, T, d/2)
	emb := tensor.Cat([]*tensor.Tensor{angle, angle}, -1)
	cos, sin = emb.Cos(), emb.Sin()
	if amp != 1 {
		cos, sin = cos.MulScalar(amp), sin.MulScalar(amp)
	}
	if m.DType != tensor.Float32 {
		cos, sin = cos.ToDType(m.DType), sin.ToDType(m.DType)
	}
	return cos.View(B, 1, T, 2*half), sin.View(B, 1, T, 2*half) // broadcast over heads
}

// applyRope is x * cos + rotate_half(x) * sin on the first RotaryDim
// channels of each head, the rest passed through (Phi-3's partial rotary).
func applyRope(x, cos, sin *tensor.Tensor) *tensor.Tensor {
	d, rd := x.Size(-1), cos.Size(-1)
	if rd == d {
		return x.Mul(cos).Add(rotateHalf(x).Mul(sin))
	}
	rot := x.Narrow(-1, 0, rd)
	return tensor.Cat([]*tensor.Tensor{rot.Mul(cos).Add(rotateHalf(rot).Mul(sin)), x.Narrow(-1, rd, d-rd)}, -1)
}

func (l *llama) free() {
	l.invFreq.Free()
	l.invFreqLocal.Free()
}

func (l *llama) lmWeight(m *Model) *tensor.Tensor {
	if w := m.byName["lm_head.weight"]; w != nil {
		return w
	}
	return l.embed
}

// rmsNorm is x / sqrt(mean(x^2) + eps) * w, computed in float32 as HF does.
func rmsNorm(x, w *tensor.Tensor, eps float64) *tensor.Tensor {
	dt := x.DType()
	xf := x
	if dt != tensor.Float32 {
		xf = x.ToDType(tensor.Float32)
	}
	r := xf.Square().MeanDim(-1, true).AddScalar(eps).Rsqrt()
	y := xf.Mul(r)
	if dt != tensor.Float32 {
		y = y.ToDType(dt)
	}
	return y.Mul(w)
}

// rotateHalf is cat(-x[..., d/2:], x[..., :d/2]).
func rotateHalf(x *tensor.Tensor) *tensor.Tensor {
	d := x.Size(-1)
	x1 := x.Narrow(-1, 0, d/2)
	x2 := x.Narrow(-1, d/2, d/2)
	return tensor.Cat([]*tensor.Tensor{x2.Neg(), x1}, -1)
}

func (l *llama) hidden(m *Model, in *Input) *tensor.Tensor {
	c := m.Config
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	nh, nkv, hd := int64(c.NumHeads), int64(c.NumKVHeads), int64(c.HeadDim)
	past := in.Cache.Len()
	pos := positions(in, past)
	ok := allowed(in, past, c.SlidingWindow)
	okGlobal := ok
	if c.Sliding != nil { // Gemma: the window on sliding layers only
		okGlobal = allowed(in, past, 0)
	}
	norm := func(x, w *tensor.Tensor) *tensor.Tensor {
		if c.Gemma {
			return gemmaNorm(x, w, c.NormEps)
		}
		return rmsNorm(x, w, c.NormEps)
	}
	cos, sin := l.ropeCosSin(m, pos, l.invFreq, c.RopeAttentionFactor())
	cosL, sinL := cos, sin
	if l.invFreqLocal != nil {
		cosL, sinL = l.ropeCosSin(m, pos, l.invFreqLocal, 1)
	}
	sliding := func(i int) bool { return c.Sliding == nil || c.Sliding[i] }
	scale := 1 / math.Sqrt(float64(hd))
	if c.Gemma {
		scale = 1 / math.Sqrt(c.QueryPreAttnScalar) // query_pre_attn_scalar^-0.5
	}
	x := tensor.Embedding(l.embed, in.IDs) // (B, T, H)
	if c.Gemma {
		// times sqrt(hidden) rounded to the model's dtype, as transformers
		x = x.MulScalar(float64(dtypeRound(m.DType, math.Sqrt(float64(c.HiddenSize)))))
	}
	layer := func(i int, x *tensor.Tensor) *tensor.Tensor {
		blk := l.blocks[i]
		h := norm(x, blk.inNorm)
		var q, k, v *tensor.Tensor
		if blk.qkv != nil { // Phi3: q | k | v in one projection
			qkv := m.proj(in, h, blk.qkv, nil)
			q, k, v = qkv.Narrow(2, 0, nh*hd), qkv.Narrow(2, nh*hd, nkv*hd), qkv.Narrow(2, (nh+nkv)*hd, nkv*hd)
		} else {
			q, k, v = m.proj(in, h, blk.q, blk.qb), m.proj(in, h, blk.k, blk.kb), m.proj(in, h, blk.v, blk.vb)
		}
		q, k = q.Reshape(B, T, nh, hd), k.Reshape(B, T, nkv, hd) // (B, T, heads, hd)
		if blk.qNorm != nil {                                    // Qwen3, Gemma 3: RMSNorm over each head, before RoPE
			q, k = norm(q, blk.qNorm), norm(k, blk.kNorm)
		}
		q, k = q.Transpose(1, 2), k.Transpose(1, 2) // (B, heads, T, hd)
		v = v.Reshape(B, T, nkv, hd).Transpose(1, 2)
		cs, sn := cos, sin
		if sliding(i) {
			cs, sn = cosL, sinL // Gemma 3's local base on sliding layers
		}
		q, k = applyRope(q, cs, sn), applyRope(k, cs, sn)
		if in.Cache != nil {
			k, v = in.Cache.append(i, k, v)
		}
		layerOK := ok
		if !sliding(i) {
			layerOK = okGlobal
		}
		a := m.attention(in, i, q, k, v, layerOK, c.KVGroups(), scale)
		if c.Gemma { // norm after attention and after the MLP, around the MLP's input too
			x = x.Add(norm(m.proj(in, a, blk.o, blk.ob), blk.postNorm))
			h = norm(x, blk.preFF)
			g := m.geluTanh(in, m.proj(in, h, blk.gate, nil)).Mul(m.proj(in, h, blk.up, nil))
			return x.Add(norm(m.proj(in, g, blk.down, nil), blk.postFF))
		}
		x = x.Add(m.dropout(in, m.proj(in, a, blk.o, blk.ob), c.ResidDropout))
		h = rmsNorm(x, blk.postNorm, c.NormEps)
		var g *tensor.Tensor
		if blk.gateUp != nil { // Phi3: gate | up in one projection
			gu := m.proj(in, h, blk.gateUp, nil)
			I := gu.Size(2) / 2
			g = gu.Narrow(2, 0, I).Silu().Mul(gu.Narrow(2, I, I))
		} else {
			g = m.proj(in, h, blk.gate, blk.gateB).Silu().Mul(m.proj(in, h, blk.up, blk.upB))
		}
		return x.Add(m.dropout(in, m.proj(in, g, blk.down, blk.downB), c.ResidDropout))
	}
	x = m.runLayers(in, x, len(l.blocks), layer, cos, sin, cosL, sinL, ok, okGlobal)
	return norm(x, l.norm)
}

// gemmaNorm is Gemma's RMSNorm: x / sqrt(mean(x^2) + eps) * (1 + w), all
// in float32, then cast back ((x * w).to(dtype), not Llama's x.to(dtype) * w).
func gemmaNorm(x, w *tensor.Tensor, eps float64) *tensor.Tensor {
	dt := x.DType()
	xf, wf := x, w
	if dt != tensor.Float32 {
		xf = x.ToDType(tensor.Float32)
	}
	if w.DType() != tensor.Float32 {
		wf = w.ToDType(tensor.Float32)
	}
	y := xf.Mul(xf.Square().MeanDim(-1, true).AddScalar(eps).Rsqrt()).Mul(wf.AddScalar(1))
	if dt != tensor.Float32 {
		y = y.ToDType(dt)
	}
	return y
}

// dtypeRound rounds v to dtype dt (bfloat16 keeps 8 bits of mantissa).
func dtypeRound(dt tensor.DType, v float64) float32 {
	f := float32(v)
	if dt == tensor.BFloat16 {
		b := math.Float32bits(f)
		b += 0x7fff + (b>>16)&1 // round to nearest even
		f = math.Float32frombits(b &^ 0xffff)
	}
	return f
}
