package tensor

/*
#include <stdint.h>
void rl_decode_attention(void **out, void *q, void *k, void *v, void *pk, void *pv, void *prow, void *ok,
                         double scale, double cap);
void rl_sample_rows(int64_t *ids, void *logits, const double *u, int64_t n, double temperature);
int rl_kernel_isa(int isa);
void rl_gelu_tanh(void **out, void *x);
void rl_pack_weight(void **out, void *w, int transposed);
void rl_packed_linear(void **out, void *x, void *packed, void *b, int64_t n);
int rl_has_packed_linear();
*/
import "C"

import (
	"runtime"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// DecodeAttention is single-query attention in one pass a row and head:
// for q (B, heads, 1, d) and the cached k, v (B, kvHeads, S, d), with
// heads a multiple of kvHeads (grouped-query attention: head h reads kv
// head h/(heads/kvHeads)), it returns softmax(s) v as (B, 1, heads*d) in
// q's dtype, where s_j = scale q.k_j, softcapped as softcap*tanh(s_j/softcap)
// when softcap > 0, and set to the lowest float where allowed (bool,
// broadcastable to (B, 1, 1, P+S); nil: every key) is false (a row with no
// allowed key averages all of them, as the op path's masked softmax does).
//
// With prefixK non-nil, the P positions of a prefix the rows share come
// before k and v: prefixK, prefixV (U, kvHeads, P, d) and prefixRows (B)
// int64, row b's prefix row (the keys and values of a prompt that several
// rows continue, stored once).
//
// CPU tensors in float32 or bfloat16, computed in float32; no autograd.
// rl_extra.cpp (added to libtch by tools/setup) implements it.
func DecodeAttention(q, k, v, prefixK, prefixV, prefixRows, allowed *Tensor, scale, softcap float64) *Tensor {
	ptr := func(t *Tensor) unsafe.Pointer {
		if t == nil {
			return nil
		}
		return unsafe.Pointer(t.c)
	}
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_decode_attention(&out, ptr(q), ptr(k), ptr(v), ptr(prefixK), ptr(prefixV), ptr(prefixRows), ptr(allowed),
		C.double(scale), C.double(softcap))
	check()
	return wrap(lib.Ctensor(out))
}

// SampleRows draws one token from each row of float32 CPU logits (R, V):
// with u[r] uniform in [0, 1), row r takes the first token in vocabulary
// order whose cumulative probability under softmax(logits/temperature)
// exceeds u[r] (the inverse of the cumulative distribution). It is one
// pass per row in rl_extra.cpp; the ids are written straight to Go memory.
func SampleRows(logits *Tensor, u []float64, temperature float64) []int64 {
	ids := make([]int64, len(u))
	if len(u) == 0 {
		return ids
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_sample_rows((*C.int64_t)(unsafe.Pointer(&ids[0])), unsafe.Pointer(logits.c),
		(*C.double)(unsafe.Pointer(&u[0])), C.int64_t(len(u)), C.double(temperature))
	check()
	return ids
}

// FusedGeluTanh is x.GeluTanh() (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715
// x^3)))) in one vectorized pass, tanh from the kernels' exp, for a
// float32 or bfloat16 CPU tensor (computed in float32); no autograd.
// libtorch's gelu spends most of its time in Sleef's tanh.
func FusedGeluTanh(x *Tensor) *Tensor {
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_gelu_tanh(&out, unsafe.Pointer(x.c))
	check()
	return wrap(lib.Ctensor(out))
}

// HasPackedLinear reports whether PackWeight and PackedLinear run here:
// an AVX-512 CPU, under the kernels' instruction set (KernelISA).
func HasPackedLinear() bool { return C.rl_has_packed_linear() != 0 }

// PackWeight lays a float32 CPU weight out for PackedLinear, in panels of
// 32 output columns (a copy; w is unchanged): w is (K, N), y = x w
// (Hugging Face's Conv1D), or (N, K) with transposed, y = x w^T
// (nn.Linear). A generation packs its weights once, so that each decoding
// step's few rows do not repack them as OpenBLAS does at every call.
func PackWeight(w *Tensor, transposed bool) *Tensor {
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_pack_weight(&out, unsafe.Pointer(w.c), C.int(b2i(transposed)))
	check()
	return wrap(lib.Ctensor(out))
}

// PackedLinear is x W + b (..., n) for x (..., K) float32 on the CPU and W
// packed by PackWeight (n its outputs); b (n) may be nil. Each output is
// its K products summed in order (fused multiply-adds); no autograd.
func PackedLinear(x, packed, b *Tensor, n int64) *Tensor {
	var bc unsafe.Pointer
	if b != nil {
		bc = unsafe.Pointer(b.c)
	}
	var out unsafe.Pointer
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.rl_packed_linear(&out, unsafe.Pointer(x.c), unsafe.Pointer(packed.c), bc, C.int64_t(n))
	check()
	return wrap(lib.Ctensor(out))
}

// KernelISA makes DecodeAttention and SampleRows use instruction set isa
// (1 the baseline x86-64 or other architecture's, 2 AVX2 with FMA, 3
// AVX-512; 0 the CPU's best, the default) when the CPU has it, and returns
// the one in use. The variants compute the same values to rounding; tests
// run each one the CPU has.
func KernelISA(isa int) int { return int(C.rl_kernel_isa(C.int(isa))) }
