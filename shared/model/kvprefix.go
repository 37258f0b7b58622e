package model

import (
	"github.com/rlsuite/rl/shared/tensor"
)

// kvPrefix is the part of a KVCache that rows repeating a prompt share:
// each layer's keys and values of the U distinct prompts (U, kv_heads, P,
// head_dim), stored once, and the prompt row of each batch row.
type kvPrefix struct {
	k, v []*tensor.Tensor // per layer (U, kv_heads, P, head_dim)
	rows *tensor.Tensor   // (B) int64 on the CPU: row b's prompt row
	n    int64            // P
}

// kvLayer is one layer's view of a shared prefix, for attention; all nil
// when there is none.
type kvLayer struct{ k, v, rows *tensor.Tensor }

// CanShare reports whether m's decoding steps read a shared prefix in
// place (Share): on the CPU in float32 or bfloat16, where the fused
// attention kernel does. Elsewhere (CUDA, other dtypes) each step would
// copy the prefix for every row, so the rows get their own (Select).
func (m *Model) CanShare() bool {
	return m.Device == tensor.CPU && (m.DType == tensor.Float32 || m.DType == tensor.BFloat16)
}

// Share turns a cache of U rows (a prefill of U distinct prompts) into one
// of len(rows) rows, row b reading prompt rows[b]: the prompts' keys and
// values stay stored once, and the positions the rows append come after
// them. It is what Select(rows) gives for the rows' computation (the same
// keys and values at the same positions) without copying the prompts to
// every row: GRPO's num_generations samples of a prompt read one copy, so
// a decoding step reads the prompt's cache once from memory instead of
// once a sample. Only fused decoding reads it in place (the op path
// assembles each row's keys first); see CanShare.
func (c *KVCache) Share(rows []int64) {
	if c.pre != nil || len(c.k) == 0 || c.k[0] == nil {
		c.selectCopy(rows)
		return
	}
	p := &kvPrefix{k: make([]*tensor.Tensor, len(c.k)), v: make([]*tensor.Tensor, len(c.k)), n: c.n[0]}
	for l := range c.k {
		tensor.Tidy(func() {
			p.k[l] = c.k[l].Narrow(2, 0, c.n[l]).Contiguous().Keep()
			p.v[l] = c.v[l].Narrow(2, 0, c.n[l]).Contiguous().Keep()
		})
		c.k[l].Free()
		c.v[l].Free()
		c.k[l], c.v[l] = nil, nil
	}
	p.rows = tensor.FromInt64s(rows, int64(len(rows))).Keep()
	c.pre = p
}

// selectCopy is Select with rows given in Go.
func (c *KVCache) selectCopy(rows []int64) {
	tensor.Tidy(func() {
		dev := tensor.CPU
		if len(c.k) > 0 && c.k[0] != nil {
			dev = c.k[0].Device()
		}
		c.Select(tensor.Int64sOn(rows, dev, int64(len(rows))))
	})
}

func (p *kvPrefix) len() int64 {
	if p == nil {
		return 0
	}
	return p.n
}

func (p *kvPrefix) free() {
	if p == nil {
		return
	}
	for l := range p.k {
		p.k[l].Free()
		p.v[l].Free()
	}
	p.rows.Free()
}

// selectRows keeps the prompt rows of the batch rows kept (rows indexes
// the batch, on any device).
func (p *kvPrefix) selectRows(rows *tensor.Tensor) {
	if p == nil {
		return
	}
	var r *tensor.Tensor
	tensor.Tidy(func() { r = p.rows.IndexSelect(0, rows.To(tensor.Int64, tensor.CPU)).Keep() })
	p.rows.Free()
	p.rows = r
}

// prefix is layer l's shared prefix; zero when c (or its prefix) is nil.
func (c *KVCache) prefix(l int) kvLayer {
	if c == nil || c.pre == nil {
		return kvLayer{}
	}
	return kvLayer{c.pre.k[l], c.pre.v[l], c.pre.rows}
}

// prepend gives every row its keys and values with the prefix before
// them (B, kv_heads, P+S, head_dim): what the op path attends over.
func (p kvLayer) prepend(k, v *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if p.k == nil {
		return k, v
	}
	idx := p.rows.To(tensor.Int64, k.Device())
	return tensor.Cat([]*tensor.Tensor{p.k.IndexSelect(0, idx), k}, 2),
		tensor.Cat([]*tensor.Tensor{p.v.IndexSelect(0, idx), v}, 2)
}
