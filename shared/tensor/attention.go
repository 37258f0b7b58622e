package tensor

/*
void rl_gelu_tanh_grad(void **out, void *x);
void rl_attention(void **out, void *q, void *k, void *v, void *ok, double scale);
int rl_has_attention();
*/
import "C"

import (
	"runtime"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// GeluTanhGrad is x.GeluTanh() for a float32 CPU tensor by rl's
// vectorized kernel (FusedGeluTanh's, tanh from the kernels' exp) in
// forward and backward, with autograd: about 5x faster than libtorch's
// gelu and gelu_backward, which spend their time in Sleef's tanh. The
// values equal libtorch's to float32 rounding.
func GeluTanhGrad(x *Tensor) *Tensor {
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_gelu_tanh_grad(&out, unsafe.Pointer(x.c))
	check()
	return wrap(lib.Ctensor(out))
}

// HasAttention reports whether Attention runs here: the process has
// cblas_sgemm (the BLAS libtorch loaded), as Debian's libtorch does.
func HasAttention() bool { return C.rl_has_attention() != 0 }

// Attention is softmax(scale q k^T) v for whole sequences, as (B, T,
// heads*d), with autograd: q (B, heads, T, d), k and v (B, kvHeads, S, d)
// float32 on the CPU, heads a multiple of kvHeads (grouped-query attention:
// head h reads kv head h/(heads/kvHeads) in place, without repeating it).
// Scores where allowed (bool, broadcastable to (B, 1, T, S); nil: every
// key) is false are set to the lowest float before the softmax, as Hugging
// Face masks (a row with no allowed key averages all values, and passes no
// gradient to the scores).
//
// rl_extra.cpp computes each (row, head) on one thread with two sgemm calls
// around a vectorized softmax, forward and backward, and keeps the
// probabilities for backward as the op path keeps softmax's output; at 128
// positions it is about 3x the op path's batched matmuls, masked_fill,
// softmax and transpose copy.
func Attention(q, k, v, allowed *Tensor, scale float64) *Tensor {
	var ok unsafe.Pointer
	if allowed != nil {
		ok = unsafe.Pointer(allowed.c)
	}
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_attention(&out, unsafe.Pointer(q.c), unsafe.Pointer(k.c), unsafe.Pointer(v.c), ok, C.double(scale))
	check()
	return wrap(lib.Ctensor(out))
}
