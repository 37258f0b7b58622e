package model

import (
	"github.com/rlsuite/rl/shared/tensor"
)

// Input is one forward pass's input. Only IDs is required.
type Input struct {
	// IDs are token ids (B, T) int64.
	IDs *tensor.Tensor
	// AttentionMask (B, P+T), 1 for real tokens and 0 for padding, covering
	// the cached tokens too, as in Hugging Face; nil means no padding.
	AttentionMask *tensor.Tensor
	// PositionIDs (B, T); nil derives them: cumsum(mask)-1 (0 at pads) when
	// a mask is given, else P..P+T-1.
	PositionIDs *tensor.Tensor
	// TokenTypeIDs (B, T) are BERT's segment ids (0 for the first text of
	// a pair, 1 for the second, as the tokenizer's EncodePair gives them);
	// nil means all 0. Only encoders with type_vocab_size > 1 read them
	// (RoBERTa's tokenizers return none).
	TokenTypeIDs *tensor.Tensor
	// SegmentIDs (B, T) for packed sequences: a token attends only to
	// earlier tokens of the same segment. nil means one segment per row.
	SegmentIDs *tensor.Tensor
	// Cache holds keys and values of earlier tokens; it is extended in place.
	Cache *KVCache
	// Train applies the config's dropout (transformers' model.train());
	// false is eval mode. A model whose NoDropout is set never drops.
	Train bool
	// DisableAdapters runs the base model without its LoRA adapters (peft's
	// disable_adapter(): TRL's reference model when the policy is a peft
	// model).
	DisableAdapters bool
	// Unfused runs a generation step (a forward pass with Cache, without
	// autograd) by libtorch's ops only, not rl's fused CPU kernels
	// (tensor.DecodeAttention for one token's attention,
	// tensor.FusedGeluTanh), for checking them; the two agree to float32
	// rounding. Other forward passes always take the op path.
	Unfused bool
}

// dropout is x.Dropout(p) in training mode, x itself otherwise.
func (m *Model) dropout(in *Input, x *tensor.Tensor, p float64) *tensor.Tensor {
	if !in.Train || m.NoDropout || p <= 0 {
		return x
	}
	return x.Dropout(p, true)
}

// KVCache holds per-layer keys and values (B, kv_heads, P, head_dim). Each
// layer's are the first Len() positions of a buffer that grows by doubling
// (as a Go slice does), so that a decoding step writes one position instead
// of copying the whole cache. After Share, the first positions are a
// prefix stored once for rows that repeat a prompt (kvprefix.go) and the
// buffers hold the positions after it. Its tensors are owned by the cache:
// Free it when done.
type KVCache struct {
	k, v []*tensor.Tensor // buffers (B, kv_heads, capacity, head_dim)
	n    []int64          // positions in use, per layer (the shared prefix's included)
	pre  *kvPrefix        // the shared prefix; nil: none
	// packed weights of this generation's decoding steps (packed.go), by
	// parameter; nil entries are over PackBudget
	packed      map[*tensor.Tensor]*tensor.Tensor
	packedBytes int64
}

// NewKVCache makes an empty cache for m.
func (m *Model) NewKVCache() *KVCache {
	L := m.Config.NumLayers
	return &KVCache{k: make([]*tensor.Tensor, L), v: make([]*tensor.Tensor, L), n: make([]int64, L)}
}

// Len is the number of cached positions.
func (c *KVCache) Len() int64 {
	if c == nil || len(c.n) == 0 {
		return 0
	}
	return c.n[0]
}

// Free releases the cached tensors.
func (c *KVCache) Free() {
	if c == nil {
		return
	}
	for i := range c.k {
		c.k[i].Free()
		c.v[i].Free()
		c.k[i], c.v[i], c.n[i] = nil, nil, 0
	}
	c.pre.free()
	c.pre = nil
	c.freePacked()
}

// Select keeps only the given batch rows (used when sequences finish).
func (c *KVCache) Select(rows *tensor.Tensor) {
	c.pre.selectRows(rows)
	for i := range c.k {
		if c.k[i] == nil {
			continue
		}
		k := c.k[i].IndexSelect(0, rows).Keep()
		v := c.v[i].IndexSelect(0, rows).Keep()
		c.k[i].Free()
		c.v[i].Free()
		c.k[i], c.v[i] = k, v
	}
}

// append adds new keys/values (B, kv_heads, T, head_dim) for layer l and
// returns views of all of them (valid until the next append).
//
// With a shared prefix the buffers hold the positions after it, and the
// views are of those only (attention reads the prefix through c.pre).
func (c *KVCache) append(l int, k, v *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	n, t := c.n[l]-c.pre.len(), k.Size(2)
	defer func() { c.n[l] += t }()
	if c.k[l] == nil || n+t > c.k[l].Size(2) {
		// Grow: at least double, and room for 64 more positions, so that
		// a prompt's first step is followed by 64 single-token steps
		// without a copy.
		capacity := max(2*n, n+t+64)
		shape := k.Shape()
		shape[2] = capacity
		nk := tensor.ZerosOn(shape, k.DType(), k.Device()).Keep()
		nv := tensor.ZerosOn(shape, v.DType(), v.Device()).Keep()
		if n > 0 {
			tensor.Tidy(func() {
				nk.Narrow(2, 0, n).Copy_(c.k[l].Narrow(2, 0, n))
				nv.Narrow(2, 0, n).Copy_(c.v[l].Narrow(2, 0, n))
			})
		}
		c.k[l].Free()
		c.v[l].Free()
		c.k[l], c.v[l] = nk, nv
	}
	tensor.Tidy(func() {
		c.k[l].Narrow(2, n, t).Copy_(k)
		c.v[l].Narrow(2, n, t).Copy_(v)
	})
	return c.k[l].Narrow(2, 0, n+t), c.v[l].Narrow(2, 0, n+t)
}

// Hidden runs the transformer and returns final-norm hidden states (B, T, H).
// It panics with *tensor.Error on a libtorch failure (callers recover at
// their package boundary); new tensors belong to the current tensor.Tidy scope.
func (m *Model) Hidden(in *Input) *tensor.Tensor { return m.arch.hidden(m, in) }

// Logits applies the LM head to hidden states: (B, T, H) -> (B, T, V),
// always in float32 (as transformers' logits.float()): a bfloat16 model or
// autocast computes the matmul in bfloat16, but losses, log-probs and
// sampling read float32.
func (m *Model) Logits(hidden *tensor.Tensor) *tensor.Tensor { return m.LogitsFor(&Input{}, hidden) }

// LogitsFor is Logits in the forward pass in: in a generation step of one
// token a row (in.Cache, no autograd, float32 on an AVX-512 CPU) the head
// multiplies its weight packed once for the generation
// (tensor.PackedLinear), the same logits to float32 rounding.
func (m *Model) LogitsFor(in *Input, hidden *tensor.Tensor) *tensor.Tensor {
	w := m.arch.lmWeight(m)
	var lg *tensor.Tensor
	if p := m.packedWeight(in, hidden, w, true); p != nil {
		lg = tensor.PackedLinear(hidden, p, nil, w.Size(0))
	} else {
		lg = float32Out(hidden.Linear(w, nil))
	}
	if cap := m.Config.FinalLogitSoftcap; cap > 0 { // Gemma 2: tanh(logits/cap)*cap
		lg = lg.DivScalar(cap).Tanh().MulScalar(cap)
	}
	return lg
}

// LMHeadChunk is the number of rows whose logits TokenLogps computes at
// once: TRL's _CHUNKED_LM_HEAD_CHUNK_SIZE (256 tokens). A chunk's float32
// logits take 256*V*4 bytes (155 MB at Qwen's 151,936 tokens) instead of
// the batch's B*T*V*4.
const LMHeadChunk = 256

// TokenLogps is what the LM head gives each position without its logits:
// log p(target) and, without gradient, the metrics TRL reads from logits.
// Each has the targets' shape.
type TokenLogps struct {
	Logp     *tensor.Tensor // log_softmax(logits)[target], float32; 0 where target < 0; gradients flow
	Entropy  *tensor.Tensor // -sum_v p log p, float32, no gradient
	Argmax   *tensor.Tensor // argmax_v logits, int64
	LogitSum *tensor.Tensor // sum_v logits, float32, no gradient
	Vocab    int64          // V, the number of logits summed
}

// TokenLogps applies the LM head to hidden (..., H) and returns each
// position's log-probability of targets (...) (int64; < 0 ignores the
// position) with the logits divided by temperature (1: none) as TRL's
// trainers do. The logits are computed LMHeadChunk rows at a time, in
// forward and again in backward, so the (B, T, V) float32 logits never
// exist (tensor.ChunkedLogps); the result equals LogitsTokenLogps(
// m.Logits(hidden) / temperature, targets) to float32 rounding.
func (m *Model) TokenLogps(hidden, targets *tensor.Tensor, temperature float64) TokenLogps {
	shape := targets.Shape()
	H := hidden.Size(-1)
	lp, ent, arg, sum := tensor.ChunkedLogps(hidden.Reshape(-1, H), m.arch.lmWeight(m), targets.Reshape(-1),
		LMHeadChunk, m.Config.FinalLogitSoftcap, temperature)
	return TokenLogps{Logp: lp.Reshape(shape...), Entropy: ent.Reshape(shape...),
		Argmax: arg.Reshape(shape...), LogitSum: sum.Reshape(shape...), Vocab: m.arch.lmWeight(m).Size(0)}
}

// LogitsTokenLogps is TokenLogps from logits (..., V) that exist already:
// the unchunked computation (TRL's loss_type "nll").
func LogitsTokenLogps(logits, targets *tensor.Tensor) TokenLogps {
	if d := logits.DType(); d != tensor.Float32 && d != tensor.Float64 {
		logits = logits.ToDType(tensor.Float32) // log-probs in float32, not bf16
	}
	lsm := logits.LogSoftmax(-1)
	valid := targets.GeScalar(0)
	t := targets.MaskedFill(valid.LogicalNot(), 0).Unsqueeze(-1)
	out := TokenLogps{Logp: lsm.Gather(-1, t).Squeeze(-1).Mul(valid.ToDType(lsm.DType())), Vocab: logits.Size(-1)}
	tensor.NoGrad(func() {
		d := lsm.Detach()
		out.Entropy = d.Exp().Mul(d).SumDim(-1, false).Neg()
		out.Argmax = logits.Argmax(-1, false)
		out.LogitSum = logits.SumDim(-1, false)
	})
	return out
}

// Scores applies the score head: (B, T, H) -> (B, T, num_labels), in
// float32 (see Logits), in eval mode. For decoders it is `score`; for
// encoders the family's classification head (BERT's pooler and
// classifier, DistilBERT's pre_classifier and classifier, RoBERTa's
// classification head), applied at every position given.
func (m *Model) Scores(hidden *tensor.Tensor) *tensor.Tensor { return m.ScoresFor(&Input{}, hidden) }

// ScoresFor is Scores with in's mode: in training (in.Train) an encoder's
// head applies its dropout.
func (m *Model) ScoresFor(in *Input, hidden *tensor.Tensor) *tensor.Tensor {
	if s, ok := m.arch.(scorer); ok {
		return float32Out(s.scores(m, in, hidden))
	}
	return float32Out(hidden.Linear(m.byName["score.weight"], nil))
}

// float32Out casts a half-precision head output to float32.
func float32Out(t *tensor.Tensor) *tensor.Tensor {
	if d := t.DType(); d == tensor.BFloat16 || d == tensor.Float16 {
		return t.ToDType(tensor.Float32)
	}
	return t
}

// Forward is Logits(Hidden(in)) for LM models and Scores(Hidden(in)) for score models.
func (m *Model) Forward(in *Input) *tensor.Tensor {
	h := m.Hidden(in)
	if m.Head == ScoreHead {
		return m.Scores(h)
	}
	return m.Logits(h)
}

// positions derives position ids (B, T) as Hugging Face does.
func positions(in *Input, past int64) *tensor.Tensor {
	if in.PositionIDs != nil {
		return in.PositionIDs
	}
	B, T := in.IDs.Size(0), in.IDs.Size(1)
	if in.AttentionMask != nil {
		// cumsum(mask) - 1, with pads set to 0 (transformers' generate).
		mask := in.AttentionMask.ToDType(tensor.Int64)
		pos := mask.Cumsum(1).AddScalar(-1).MaskedFill(mask.EqScalar(0), 0)
		return pos.Narrow(1, past, T)
	}
	return tensor.Arange(past, past+T, in.IDs.Device()).Unsqueeze(0).Expand(B, T)
}

// allowed builds the boolean attention pattern (B or 1, 1, T, P+T): causal,
// within the sliding window when window > 0 (query i sees key j when i - j
// < window, on sequence indices, as transformers' Mistral masks), keys not
// padding, same segment. nil means everything is allowed.
func allowed(in *Input, past int64, window int) *tensor.Tensor {
	T := in.IDs.Size(1)
	S := past + T
	dev := in.IDs.Device()
	var ok *tensor.Tensor
	if T > 1 {
		// query i (absolute past+i) sees key j when j <= past+i.
		q := tensor.Arange(past, S, dev).Unsqueeze(1) // (T, 1)
		k := tensor.Arange(0, S, dev).Unsqueeze(0)    // (1, S)
		ok = k.Le(q).Unsqueeze(0).Unsqueeze(0)        // (1, 1, T, S)
	}
	if window > 0 && S > int64(window) {
		q := tensor.Arange(past, S, dev).Unsqueeze(1)
		k := tensor.Arange(0, S, dev).Unsqueeze(0)
		near := q.Sub(k).LtScalar(float64(window)).Unsqueeze(0).Unsqueeze(0) // (1, 1, T, S)
		if ok == nil {
			ok = near
		} else {
			ok = ok.LogicalAnd(near)
		}
	}
	if in.AttentionMask != nil {
		keys := in.AttentionMask.NeScalar(0).Unsqueeze(1).Unsqueeze(1) // (B, 1, 1, S)
		if ok == nil {
			ok = keys
		} else {
			ok = ok.LogicalAnd(keys)
		}
	}
	if in.SegmentIDs != nil {
		seg := in.SegmentIDs
		same := seg.Unsqueeze(2).Eq(seg.Unsqueeze(1)).Unsqueeze(1) // (B, 1, T, T)
		if ok == nil {
			ok = same
		} else {
			ok = ok.LogicalAnd(same)
		}
	}
	return ok
}

// attention computes dropout(softmax(scale * q k^T masked)) v for q
// (B, nh, T, d), k and v (B, nkv, S, d) of layer l (in.Cache's positions
// after its shared prefix, if it has one); returns (B, T, nh*d). The
// families' scale is 1/sqrt(d) unless their config says otherwise.
func (m *Model) attention(in *Input, l int, q, k, v, ok *tensor.Tensor, groups int, scale float64) *tensor.Tensor {
	pre := in.Cache.prefix(l)
	if m.fusedAttention(in, q, k) {
		return tensor.DecodeAttention(q, k, v, pre.k, pre.v, pre.rows, ok, scale, m.Config.AttnLogitSoftcapping)
	}
	k, v = pre.prepend(k, v)
	if groups > 1 {
		k = k.RepeatInterleave(int64(groups), 1)
		v = v.RepeatInterleave(int64(groups), 1)
	}
	B, nh, T, d := q.Size(0), q.Size(1), q.Size(2), q.Size(3)
	att := q.Matmul(k.Transpose(2, 3)).MulScalar(scale) // (B, nh, T, S)
	if cap := m.Config.AttnLogitSoftcapping; cap > 0 {  // Gemma 2, before the mask
		att = att.DivScalar(cap).Tanh().MulScalar(cap)
	}
	if ok != nil {
		// Hugging Face masks with the dtype's minimum, not -inf, so a fully
		// masked row (a left pad) becomes uniform instead of NaN.
		att = att.MaskedFill(ok.LogicalNot(), tensor.MinValue(att.DType()))
	}
	att = m.dropout(in, att.Softmax(-1), m.Config.AttnDropout)
	return att.Matmul(v).Transpose(1, 2).Reshape(B, T, nh*d)
}

// decodingFused reports whether in is a generation step that rl's fused
// CPU kernels may compute: a forward pass with a KV cache, without
// autograd or dropout, unless in.Unfused.
func (m *Model) decodingFused(in *Input) bool {
	return !in.Unfused && in.Cache != nil && !in.Train && !tensor.GradEnabled()
}

// fusedAttention reports whether attention for q (B, nh, T, d) runs as one
// fused kernel (tensor.DecodeAttention: the same softmax(scale q k^T) v,
// softcap and mask, in one pass a row and head): a decoding step of one
// token (decodingFused) on the CPU in float32 or bfloat16. Everything else
// takes the op path.
func (m *Model) fusedAttention(in *Input, q, k *tensor.Tensor) bool {
	if !m.decodingFused(in) || q.Size(2) != 1 || q.Device() != tensor.CPU {
		return false
	}
	dt := q.DType()
	return (dt == tensor.Float32 || dt == tensor.BFloat16) && k.DType() == dt
}

// geluTanh is x.GeluTanh(), by the fused CPU kernel (tensor.FusedGeluTanh,
// the same values to float32 rounding) in generation (a forward pass
// with a KV cache and no autograd, of float32 or bfloat16 CPU tensors,
// unless in.Unfused). Other forward passes keep libtorch's op, so that
// log-probabilities computed without gradient (old and reference
// policies, checkpointed layers) equal those of the training forward.
func (m *Model) geluTanh(in *Input, x *tensor.Tensor) *tensor.Tensor {
	if !m.decodingFused(in) || x.Device() != tensor.CPU {
		return x.GeluTanh()
	}
	if dt := x.DType(); dt != tensor.Float32 && dt != tensor.BFloat16 {
		return x.GeluTanh()
	}
	return tensor.FusedGeluTanh(x)
}
