package model

import (
	"github.com/rlsuite/rl/shared/tensor"
)

// PackBudget is how many bytes of weights a generation (one KVCache)
// keeps packed for tensor.PackedLinear; weights past it take the op path.
// The tiny GPT-2 packs 21 MB; a 1B model in float32 would want 4 GB, and
// its decoding steps' matmuls are large enough for OpenBLAS's own packing
// to matter less.
const PackBudget = 1 << 30

// packedWeight is the packed copy of weight w (a parameter: (K, N) for
// GPT-2's Conv1D, (N, K) with transposed) that a generation step
// multiplies x (B, 1, K) by, packed at its first use and owned by in's
// cache; nil when the step runs on the op path: not a decoding step of one
// token a row (decodingFused, T = 1), not a float32 CPU model, a quantised
// weight, autocast on, a CPU without AVX-512, or past PackBudget.
func (m *Model) packedWeight(in *Input, x, w *tensor.Tensor, transposed bool) *tensor.Tensor {
	if !m.decodingFused(in) || m.DType != tensor.Float32 || m.Device != tensor.CPU || m.quant[w] != nil {
		return nil
	}
	if x.Dim() != 3 || x.Size(1) != 1 || tensor.AutocastEnabled() || !tensor.HasPackedLinear() {
		return nil
	}
	c := in.Cache
	if p, ok := c.packed[w]; ok {
		return p // nil: over budget
	}
	if c.packed == nil {
		c.packed = map[*tensor.Tensor]*tensor.Tensor{}
	}
	var p *tensor.Tensor
	if bytes := int64(w.Numel()) * 4; c.packedBytes+bytes <= PackBudget {
		p = tensor.PackWeight(w, transposed).Keep()
		c.packedBytes += bytes
	}
	c.packed[w] = p
	return p
}

// freePacked releases the cache's packed weights.
func (c *KVCache) freePacked() {
	for _, p := range c.packed {
		p.Free()
	}
	c.packed, c.packedBytes = nil, 0
}
