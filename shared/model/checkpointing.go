package model

import (
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// Gradient checkpointing (Chen et al. 2016, arXiv:1604.06174; transformers'
// gradient_checkpointing_enable, one checkpoint per decoder layer): a
// training forward keeps only each layer's input, runs the layers without
// recording them, and FinishBackward recomputes each layer, last first,
// backpropagating through it alone. Activation memory drops from every
// layer's intermediates to one layer's plus the layer inputs, for about one
// more forward pass of compute.

// ckpt is one checkpointed forward pass awaiting its backward.
type ckpt struct {
	layer  func(i int, x *tensor.Tensor) *tensor.Tensor
	inputs []*tensor.Tensor // each layer's input, detached (owned)
	x0     *tensor.Tensor   // the first input with its graph (embeddings)
	last   *tensor.Tensor   // the leaf the rest of the forward starts from
	keep   []*tensor.Tensor // tensors the layers read (masks, rotary), owned
	seed   int64            // dropout seeds: seed + i for layer i, in both passes
}

// runLayers applies layer to x for i = 0..n-1. With GradientCheckpointing,
// in a training pass with autograd on and no KV cache, it records nothing
// for the layers: it keeps their inputs (and the tensors in keep, which
// the layer function reads) for FinishBackward, and returns a leaf that
// collects the gradient of the rest of the forward.
func (m *Model) runLayers(in *Input, x *tensor.Tensor, n int, layer func(i int, x *tensor.Tensor) *tensor.Tensor, keep ...*tensor.Tensor) *tensor.Tensor {
	if in.Cache != nil { // the layers append to the KV cache: their tensors outlive them
		for i := range n {
			x = layer(i, x)
		}
		return x
	}
	if !m.GradientCheckpointing || !in.Train || !tensor.GradEnabled() {
		// Each layer's temporaries are freed as the layer ends, not with
		// the whole forward's scope: autograd keeps only what backward
		// needs (PyTorch's lifetimes). Held to the end, the scores before
		// the mask and softmax and the MLP's intermediates of every layer
		// roughly doubled a training forward's memory (TinyLlama's shape,
		// 512 tokens: about 290 MB a layer against 130).
		in0 := x
		for i := range n {
			var next *tensor.Tensor
			tensor.Tidy(func() { next = layer(i, x).Keep() })
			if x != in0 {
				x.Free() // the previous layer's output (the handle; autograd keeps what it needs)
			}
			x = next
		}
		if x == in0 {
			return x
		}
		out := x.Alias() // back in the caller's scope
		x.Free()
		return out
	}
	ck := &ckpt{layer: layer, x0: x.Keep()}
	// seeds drawn from libtorch's generator (seeded per step by the
	// trainer), so a resumed run draws the same ones
	ck.seed = int64(math.Float64bits(tensor.Randn([]int64{1}, tensor.Float64, tensor.CPU).Item()) >> 24)
	for _, t := range keep {
		if t != nil {
			ck.keep = append(ck.keep, t.Keep())
		}
	}
	tensor.NoGrad(func() {
		cur := x
		for i := range n {
			xi := cur.Detach().Keep()
			ck.inputs = append(ck.inputs, xi)
			tensor.ManualSeed(ck.seed + int64(i))
			var next *tensor.Tensor
			tensor.Tidy(func() { next = layer(i, xi).Keep() })
			if i > 0 {
				cur.Free() // the previous output: xi shares its storage
			}
			cur = next
		}
		ck.last = cur.Detach()
		if n > 0 {
			cur.Free()
		}
	})
	ck.last.SetRequiresGrad(true)
	ck.last.Keep()
	m.ckpts = append(m.ckpts, ck)
	return ck.last
}

// FinishBackward completes the backward pass of every checkpointed forward
// since the last call: after loss.Backward() has filled the gradient at
// the layers' output, each layer is recomputed from its saved input (with
// its dropout masks: the same seeds) and backpropagated, last layer first,
// and the input gradient flows on into the embeddings. Parameter
// gradients accumulate as in a plain backward. It panics with
// *tensor.Error on a libtorch failure, as Forward does.
func (m *Model) FinishBackward() {
	cks := m.ckpts
	m.ckpts = nil
	defer func() {
		for _, ck := range cks {
			ck.free()
		}
	}()
	for k := len(cks) - 1; k >= 0; k-- {
		ck := cks[k]
		g := ck.last.Grad()
		if g == nil {
			continue // the loss did not use this pass
		}
		g = g.Detach().Keep()
		for i := len(ck.inputs) - 1; i >= 0; i-- {
			xi := ck.inputs[i]
			xi.SetRequiresGrad(true)
			tensor.Tidy(func() {
				tensor.ManualSeed(ck.seed + int64(i))
				out := ck.layer(i, xi)
				out.Mul(g).Sum().Backward()
			})
			g.Free()
			gi := xi.Grad()
			if gi == nil {
				return
			}
			g = gi.Detach().Keep()
			gi.Free()
		}
		if ck.x0.RequiresGrad() { // into the embeddings, when they train
			tensor.Tidy(func() { ck.x0.Mul(g).Sum().Backward() })
		}
		g.Free()
	}
}

func (ck *ckpt) free() {
	for _, t := range ck.inputs {
		t.Free()
	}
	for _, t := range ck.keep {
		t.Free()
	}
	ck.x0.Free()
	ck.last.Free()
}
