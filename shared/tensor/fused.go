package tensor

/*
#include <stdint.h>
#include <stdlib.h>
void rl_adamw_step(void **params, void **grads, void **exp_avg, void **exp_avg_sq,
                   int *decay, int n, double lr, double beta1, double beta2, double eps,
                   double weight_decay, int64_t step);
void rl_quant_linear(void **out, void *x, void *bias, void **q, int nq, int64_t n,
                     int64_t rows, int64_t cols, int64_t block, int dtype);
void rl_chunked_logps(void **out, void *hidden, void *weight, void *targets,
                      int64_t chunk, double cap, double temperature);
*/
import "C"

import (
	"runtime"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// AdamWParam is one parameter's part of an AdamW step: the parameter, its
// gradient, its two moment buffers (same shape and dtype), and whether
// weight decay applies to it.
type AdamWParam struct {
	Param, Grad, ExpAvg, ExpAvgSq *Tensor
	Decay                         bool
}

// AdamWStep applies step number step (from 1) of AdamW, torch.optim.AdamW's
// formula: p *= 1 - lr*wd (where Decay); m = lerp(m, g, 1-beta1);
// v = beta2 v + (1-beta2) g^2; p -= lr/(1-beta1^step) * m /
// (sqrt(v)/sqrt(1-beta2^step) + eps). Float32 CPU tensors are updated by a
// fused loop in one pass over memory with no temporaries (rl_extra.cpp,
// added to libtch by tools/setup); others by PyTorch's op sequence.
func AdamWStep(ps []AdamWParam, lr, beta1, beta2, eps, weightDecay float64, step int) {
	n := len(ps)
	if n == 0 {
		return
	}
	// The pointer arrays live in C memory: Go memory passed to C may not
	// hold Go pointers, and these are C pointers anyway.
	ptrs := (*[1 << 28]unsafe.Pointer)(C.malloc(C.size_t(4 * n * int(unsafe.Sizeof(unsafe.Pointer(nil))))))[: 4*n : 4*n]
	defer C.free(unsafe.Pointer(&ptrs[0]))
	decay := (*[1 << 28]C.int)(C.malloc(C.size_t(n * int(unsafe.Sizeof(C.int(0))))))[:n:n]
	defer C.free(unsafe.Pointer(&decay[0]))
	for i, p := range ps {
		ptrs[i], ptrs[n+i], ptrs[2*n+i], ptrs[3*n+i] = unsafe.Pointer(p.Param.c), unsafe.Pointer(p.Grad.c),
			unsafe.Pointer(p.ExpAvg.c), unsafe.Pointer(p.ExpAvgSq.c)
		decay[i] = 0
		if p.Decay {
			decay[i] = 1
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_adamw_step(&ptrs[0], &ptrs[n], &ptrs[2*n], &ptrs[3*n], &decay[0], C.int(n),
		C.double(lr), C.double(beta1), C.double(beta2), C.double(eps), C.double(weightDecay), C.int64_t(step))
	check()
}

// ChunkedLogps is the LM head's log p(target) per row of hidden (N, H) under
// weight (V, H), computed chunk rows at a time so that only a (chunk, V)
// block of logits exists at once, in forward and in backward, which
// recomputes each chunk (the idea of Liger's fused linear cross-entropy; TRL's
// chunked_nll checkpoints each chunk). Each chunk's logits are
// linear(hidden, weight) in autocast's dtype (else hidden's), cast to
// float32, softcapped as tanh(z/softcap)*softcap when softcap > 0, then
// divided by temperature. Targets (N) int64 below 0 give 0.
//
// It returns logp (N, float32; gradients flow to hidden and weight) and,
// without gradient, each row's entropy (N), argmax (N, int64) and sum of
// logits (N). rl_extra.cpp (added to libtch by tools/setup) implements it as
// a torch::autograd::Function.
func ChunkedLogps(hidden, weight, targets *Tensor, chunk int, softcap, temperature float64) (logp, entropy, argmax, logitSum *Tensor) {
	out := (*[4]unsafe.Pointer)(C.malloc(C.size_t(4 * unsafe.Sizeof(unsafe.Pointer(nil)))))
	defer C.free(unsafe.Pointer(&out[0]))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_chunked_logps(&out[0], unsafe.Pointer(hidden.c), unsafe.Pointer(weight.c), unsafe.Pointer(targets.c),
		C.int64_t(chunk), C.double(softcap), C.double(temperature))
	check()
	return wrap(lib.Ctensor(out[0])), wrap(lib.Ctensor(out[1])), wrap(lib.Ctensor(out[2])), wrap(lib.Ctensor(out[3]))
}

// QuantLinear is x W^T + bias (bias may be nil) for a frozen quantised
// weight W (rows = out, cols = in) stored as q: {packed, absmax, code} for
// 4 bits (n values, code[c] * absmax of each block of block values, two
// codes a byte, high nibble first), {int8 codes (rows, cols), rowmax} for
// 8 bits (q * rowmax / 127). As bitsandbytes' MatMul4Bit, W is dequantised
// in forward and again in backward, so autograd holds no float copy of it;
// gradients flow to x only. The matmul runs in autocast's dtype when CPU
// autocast is on, else in dtype.
func QuantLinear(x, bias *Tensor, q []*Tensor, n, rows, cols, block int64, dtype DType) *Tensor {
	ptrs := (*[4]unsafe.Pointer)(C.malloc(C.size_t(4 * unsafe.Sizeof(unsafe.Pointer(nil)))))
	defer C.free(unsafe.Pointer(&ptrs[0]))
	for i, t := range q {
		ptrs[i] = unsafe.Pointer(t.c)
	}
	var b unsafe.Pointer
	if bias != nil {
		b = unsafe.Pointer(bias.c)
	}
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_quant_linear(&out, unsafe.Pointer(x.c), b, &ptrs[0], C.int(len(q)), C.int64_t(n), C.int64_t(rows),
		C.int64_t(cols), C.int64_t(block), C.int(dtype))
	check()
	return wrap(lib.Ctensor(out))
}
