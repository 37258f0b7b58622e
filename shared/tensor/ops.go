package tensor

/*
#include <stdint.h>
void atg_gelu(void **out, void *self, char *approximate, int len);
static char *gelu_tanh = "tanh";
static void gelu_tanh_call(void **out, void *self) { atg_gelu(out, self, gelu_tanh, 4); }
static char *gelu_none = "none";
static void gelu_call(void **out, void *self) { atg_gelu(out, self, gelu_none, 4); }
*/
import "C"

import (
	"math"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

type ctensor = lib.Ctensor

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func op1(f func(*ctensor, ctensor), t *Tensor) *Tensor {
	var out ctensor
	f(&out, t.c)
	check()
	return wrap(out)
}

func op2(f func(*ctensor, ctensor, ctensor), a, b *Tensor) *Tensor {
	var out ctensor
	f(&out, a.c, b.c)
	check()
	return wrap(out)
}

// scalar makes a libtorch Scalar: an integer one for integral values on
// integer tensors, so that int64 arithmetic stays int64 as in PyTorch.
func scalarFor(t *Tensor, v float64) lib.Cscalar {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		switch t.DType() {
		case Int64, Int32, Int16, Int8, Uint8:
			return lib.AtsInt(int64(v))
		}
	}
	return lib.AtsFloat(v)
}

func opS(f func(*ctensor, ctensor, lib.Cscalar), t *Tensor, v float64) *Tensor {
	s := scalarFor(t, v)
	var out ctensor
	f(&out, t.c, s)
	lib.AtsFree(s)
	check()
	return wrap(out)
}

// inplace runs an in-place op and drops the extra handle libtorch returns.
func inplace(f func(*ctensor)) {
	var out ctensor
	f(&out)
	check()
	if out != nil {
		lib.AtFree(out)
	}
}

// ---------------------------------------------------------------- elementwise

func (t *Tensor) Add(o *Tensor) *Tensor       { return op2(lib.AtgAdd, t, o) }
func (t *Tensor) Sub(o *Tensor) *Tensor       { return op2(lib.AtgSub, t, o) }
func (t *Tensor) Mul(o *Tensor) *Tensor       { return op2(lib.AtgMul, t, o) }
func (t *Tensor) Div(o *Tensor) *Tensor       { return op2(lib.AtgDiv, t, o) }
func (t *Tensor) Minimum(o *Tensor) *Tensor   { return op2(lib.AtgMinimum, t, o) }
func (t *Tensor) Maximum(o *Tensor) *Tensor   { return op2(lib.AtgMaximum, t, o) }
func (t *Tensor) AddScalar(v float64) *Tensor { return opS(lib.AtgAddScalar, t, v) }
func (t *Tensor) MulScalar(v float64) *Tensor { return opS(lib.AtgMulScalar, t, v) }
func (t *Tensor) DivScalar(v float64) *Tensor { return opS(lib.AtgDivScalar, t, v) }
func (t *Tensor) PowScalar(v float64) *Tensor { return opS(lib.AtgPowTensorScalar, t, v) }
func (t *Tensor) ClampMin(v float64) *Tensor  { return opS(lib.AtgClampMin, t, v) }
func (t *Tensor) ClampMax(v float64) *Tensor  { return opS(lib.AtgClampMax, t, v) }
func (t *Tensor) Neg() *Tensor                { return op1(lib.AtgNeg, t) }
func (t *Tensor) Exp() *Tensor                { return op1(lib.AtgExp, t) }
func (t *Tensor) Log() *Tensor                { return op1(lib.AtgLog, t) }
func (t *Tensor) Log1p() *Tensor              { return op1(lib.AtgLog1p, t) }
func (t *Tensor) Expm1() *Tensor              { return op1(lib.AtgExpm1, t) }
func (t *Tensor) Sqrt() *Tensor               { return op1(lib.AtgSqrt, t) }
func (t *Tensor) Rsqrt() *Tensor              { return op1(lib.AtgRsqrt, t) }
func (t *Tensor) Square() *Tensor             { return op1(lib.AtgSquare, t) }
func (t *Tensor) Abs() *Tensor                { return op1(lib.AtgAbs, t) }
func (t *Tensor) Sign() *Tensor               { return op1(lib.AtgSign, t) }
func (t *Tensor) Sigmoid() *Tensor            { return op1(lib.AtgSigmoid, t) }
func (t *Tensor) LogSigmoid() *Tensor         { return op1(lib.AtgLogSigmoid, t) }
func (t *Tensor) Tanh() *Tensor               { return op1(lib.AtgTanh, t) }
func (t *Tensor) Cos() *Tensor                { return op1(lib.AtgCos, t) }
func (t *Tensor) Round() *Tensor              { return op1(lib.AtgRound, t) }

// BitwiseRightShift is t >> v (integer tensors).
func (t *Tensor) BitwiseRightShift(v int64) *Tensor {
	return opS(lib.AtgBitwiseRightShiftTensorScalar, t, float64(v))
}

// BitwiseAndScalar is t & v (integer tensors).
func (t *Tensor) BitwiseAndScalar(v int64) *Tensor { return opS(lib.AtgBitwiseAnd, t, float64(v)) }
func (t *Tensor) Reciprocal() *Tensor              { return op1(lib.AtgReciprocal, t) }
func (t *Tensor) Sin() *Tensor                     { return op1(lib.AtgSin, t) }
func (t *Tensor) Relu() *Tensor                    { return op1(lib.AtgRelu, t) }
func (t *Tensor) Silu() *Tensor                    { return op1(lib.AtgSilu, t) }
func (t *Tensor) Softplus() *Tensor                { return op1(lib.AtgSoftplus, t) }
func (t *Tensor) IsFinite() *Tensor                { return op1(lib.AtgIsfinite, t) }
func (t *Tensor) LogicalNot() *Tensor              { return op1(lib.AtgLogicalNot, t) }
func (t *Tensor) LogicalAnd(o *Tensor) *Tensor     { return op2(lib.AtgLogicalAnd, t, o) }
func (t *Tensor) LogicalOr(o *Tensor) *Tensor      { return op2(lib.AtgLogicalOr, t, o) }

// Clamp limits values to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	a, b := lib.AtsFloat(lo), lib.AtsFloat(hi)
	var out ctensor
	lib.AtgClamp(&out, t.c, a, b)
	lib.AtsFree(a)
	lib.AtsFree(b)
	check()
	return wrap(out)
}

// GeluTanh is GELU with the tanh approximation (GPT-2's "gelu_new").
func (t *Tensor) GeluTanh() *Tensor {
	var out ctensor
	C.gelu_tanh_call((*unsafe.Pointer)(unsafe.Pointer(&out)), unsafe.Pointer(t.c))
	check()
	return wrap(out)
}

// Gelu is the exact GELU, x·Φ(x) with the normal CDF (torch's
// approximate="none"; transformers' "gelu": BERT, DeBERTa).
func (t *Tensor) Gelu() *Tensor {
	var out ctensor
	C.gelu_call((*unsafe.Pointer)(unsafe.Pointer(&out)), unsafe.Pointer(t.c))
	check()
	return wrap(out)
}

// Comparisons with a scalar or a tensor give bool tensors.
func (t *Tensor) EqScalar(v float64) *Tensor { return opS(lib.AtgEq, t, v) }
func (t *Tensor) NeScalar(v float64) *Tensor { return opS(lib.AtgNe, t, v) }
func (t *Tensor) LtScalar(v float64) *Tensor { return opS(lib.AtgLt, t, v) }
func (t *Tensor) GtScalar(v float64) *Tensor { return opS(lib.AtgGt, t, v) }
func (t *Tensor) GeScalar(v float64) *Tensor { return opS(lib.AtgGe, t, v) }
func (t *Tensor) LeScalar(v float64) *Tensor { return opS(lib.AtgLe, t, v) }
func (t *Tensor) Eq(o *Tensor) *Tensor       { return op2(lib.AtgEqTensor, t, o) }
func (t *Tensor) Ne(o *Tensor) *Tensor       { return op2(lib.AtgNeTensor, t, o) }
func (t *Tensor) Lt(o *Tensor) *Tensor       { return op2(lib.AtgLtTensor, t, o) }
func (t *Tensor) Gt(o *Tensor) *Tensor       { return op2(lib.AtgGtTensor, t, o) }
func (t *Tensor) Ge(o *Tensor) *Tensor       { return op2(lib.AtgGeTensor, t, o) }
func (t *Tensor) Le(o *Tensor) *Tensor       { return op2(lib.AtgLeTensor, t, o) }

// Where picks t where cond is true, else o.
func Where(cond, t, o *Tensor) *Tensor {
	var out ctensor
	lib.AtgWhereSelf(&out, cond.c, t.c, o.c)
	check()
	return wrap(out)
}

// MaskedFill sets v where mask is true.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	s := lib.AtsFloat(v)
	var out ctensor
	lib.AtgMaskedFill(&out, t.c, mask.c, s)
	lib.AtsFree(s)
	check()
	return wrap(out)
}

// ---------------------------------------------------------------- linear algebra

func (t *Tensor) Matmul(o *Tensor) *Tensor { return op2(lib.AtgMatmul, t, o) }
func (t *Tensor) Bmm(o *Tensor) *Tensor    { return op2(lib.AtgBmm, t, o) }

// Linear is x @ w^T + b with w shaped (out, in); b may be nil.
// Addmm is t + a @ b for a (n, k), b (k, m) and t broadcastable to (n, m).
func (t *Tensor) Addmm(a, b *Tensor) *Tensor {
	var out ctensor
	lib.AtgAddmm(&out, t.c, a.c, b.c)
	check()
	return wrap(out)
}

func (t *Tensor) Linear(w, b *Tensor) *Tensor {
	var bc ctensor
	if b != nil {
		bc = b.c
	}
	var out ctensor
	lib.AtgLinear(&out, t.c, w.c, bc)
	check()
	return wrap(out)
}

// ---------------------------------------------------------------- nn functions

func (t *Tensor) Softmax(dim int) *Tensor {
	var out ctensor
	lib.AtgSoftmax(&out, t.c, int64(dim), -1)
	check()
	return wrap(out)
}

func (t *Tensor) LogSoftmax(dim int) *Tensor {
	var out ctensor
	lib.AtgLogSoftmax(&out, t.c, int64(dim), -1)
	check()
	return wrap(out)
}

// LayerNorm normalises over the last dimension.
func (t *Tensor) LayerNorm(w, b *Tensor, eps float64) *Tensor {
	shape := []int64{t.Size(-1)}
	var wc, bc ctensor
	if w != nil {
		wc = w.c
	}
	if b != nil {
		bc = b.c
	}
	var out ctensor
	lib.AtgLayerNorm(&out, t.c, shape, 1, wc, bc, eps, 1)
	check()
	return wrap(out)
}

// Embedding looks up rows of weight (V, H) for int64 ids.
func Embedding(weight, ids *Tensor) *Tensor {
	var out ctensor
	lib.AtgEmbedding(&out, weight.c, ids.c, -1, 0, 0)
	check()
	return wrap(out)
}

// Reduction for CrossEntropy.
type Reduction int64

const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy of logits (N, C) against int64 targets (N); targets equal to
// ignoreIndex (HF uses -100) do not count.
func (t *Tensor) CrossEntropy(target *Tensor, ignoreIndex int64, r Reduction) *Tensor {
	var out ctensor
	lib.AtgCrossEntropyLoss(&out, t.c, target.c, nil, int64(r), ignoreIndex, 0)
	check()
	return wrap(out)
}

// Dropout in training mode with probability p (identity when p == 0).
func (t *Tensor) Dropout(p float64, train bool) *Tensor {
	var out ctensor
	lib.AtgDropout(&out, t.c, p, b2i(train))
	check()
	return wrap(out)
}

// ---------------------------------------------------------------- shapes

func (t *Tensor) Reshape(shape ...int64) *Tensor {
	var out ctensor
	lib.AtgReshape(&out, t.c, shape, len(shape))
	check()
	return wrap(out)
}

func (t *Tensor) View(shape ...int64) *Tensor {
	var out ctensor
	lib.AtgView(&out, t.c, shape, len(shape))
	check()
	return wrap(out)
}

func (t *Tensor) Transpose(a, b int) *Tensor {
	var out ctensor
	lib.AtgTranspose(&out, t.c, int64(a), int64(b))
	check()
	return wrap(out)
}

func (t *Tensor) Permute(dims ...int64) *Tensor {
	var out ctensor
	lib.AtgPermute(&out, t.c, dims, len(dims))
	check()
	return wrap(out)
}

func (t *Tensor) Contiguous() *Tensor { return op1(lib.AtgContiguous, t) }

// Narrow is t[..., start:start+length, ...] along dim (a view).
func (t *Tensor) Narrow(dim int, start, length int64) *Tensor {
	var out ctensor
	lib.AtgNarrow(&out, t.c, int64(dim), start, length)
	check()
	return wrap(out)
}

// Select is t[..., i, ...] along dim, dropping that dim (a view).
func (t *Tensor) Select(dim int, i int64) *Tensor {
	var out ctensor
	lib.AtgSelect(&out, t.c, int64(dim), i)
	check()
	return wrap(out)
}

func (t *Tensor) Unsqueeze(dim int) *Tensor {
	var out ctensor
	lib.AtgUnsqueeze(&out, t.c, int64(dim))
	check()
	return wrap(out)
}

func (t *Tensor) Squeeze(dim int) *Tensor {
	var out ctensor
	lib.AtgSqueezeDim(&out, t.c, int64(dim))
	check()
	return wrap(out)
}

// Expand broadcasts to shape (-1 keeps a dim).
func (t *Tensor) Expand(shape ...int64) *Tensor {
	var out ctensor
	lib.AtgExpand(&out, t.c, shape, len(shape), 0)
	check()
	return wrap(out)
}

func (t *Tensor) Flatten(start, end int) *Tensor {
	var out ctensor
	lib.AtgFlatten(&out, t.c, int64(start), int64(end))
	check()
	return wrap(out)
}

// RepeatInterleave repeats each slice along dim n times.
func (t *Tensor) RepeatInterleave(n int64, dim int) *Tensor {
	var out ctensor
	lib.AtgRepeatInterleaveSelfInt(&out, t.c, n, int64(dim), 0, 0, 1)
	check()
	return wrap(out)
}

func ctensors(ts []*Tensor) []ctensor {
	cs := make([]ctensor, len(ts))
	for i, t := range ts {
		cs[i] = t.c
	}
	return cs
}

// Cat concatenates along dim.
func Cat(ts []*Tensor, dim int) *Tensor {
	var out ctensor
	lib.AtgCat(&out, ctensors(ts), len(ts), int64(dim))
	check()
	return wrap(out)
}

// Stack stacks along a new dim.
func Stack(ts []*Tensor, dim int) *Tensor {
	var out ctensor
	lib.AtgStack(&out, ctensors(ts), len(ts), int64(dim))
	check()
	return wrap(out)
}

// Split cuts t into pieces of size along dim (views).
func (t *Tensor) Split(size int64, dim int) []*Tensor {
	n := t.Size(dim)
	var parts []*Tensor
	for s := int64(0); s < n; s += size {
		l := size
		if s+l > n {
			l = n - s
		}
		parts = append(parts, t.Narrow(dim, s, l))
	}
	return parts
}

// ---------------------------------------------------------------- reductions

func (t *Tensor) Sum() *Tensor {
	var out ctensor
	lib.AtgSum(&out, t.c, -1)
	check()
	return wrap(out)
}

func (t *Tensor) SumDim(dim int, keep bool) *Tensor {
	var out ctensor
	lib.AtgSumDimIntlist(&out, t.c, []int64{int64(dim)}, 1, b2i(keep), -1)
	check()
	return wrap(out)
}

func (t *Tensor) Mean() *Tensor {
	var out ctensor
	lib.AtgMean(&out, t.c, -1)
	check()
	return wrap(out)
}

func (t *Tensor) MeanDim(dim int, keep bool) *Tensor {
	var out ctensor
	lib.AtgMeanDim(&out, t.c, []int64{int64(dim)}, 1, b2i(keep), -1)
	check()
	return wrap(out)
}

// Var is the variance over all elements (unbiased when asked).
func (t *Tensor) Var(unbiased bool) *Tensor {
	var out ctensor
	lib.AtgVar(&out, t.c, b2i(unbiased))
	check()
	return wrap(out)
}

func (t *Tensor) Max() *Tensor { return op1(lib.AtgMax, t) }
func (t *Tensor) Min() *Tensor { return op1(lib.AtgMin, t) }

// MaxDim returns values and indices of the max along dim.
func (t *Tensor) MaxDim(dim int, keep bool) (*Tensor, *Tensor) {
	var out [2]ctensor
	lib.AtgMaxDim(&out[0], t.c, int64(dim), b2i(keep))
	check()
	return wrap(out[0]), wrap(out[1])
}

func (t *Tensor) Argmax(dim int, keep bool) *Tensor {
	var out ctensor
	lib.AtgArgmax(&out, t.c, int64(dim), 0, b2i(keep))
	check()
	return wrap(out)
}

// Topk returns the k largest values and their indices along dim.
func (t *Tensor) Topk(k int64, dim int) (*Tensor, *Tensor) {
	var out [2]ctensor
	lib.AtgTopk(&out[0], t.c, k, int64(dim), 1, 1)
	check()
	return wrap(out[0]), wrap(out[1])
}

// Sort returns sorted values and indices along dim.
func (t *Tensor) Sort(dim int, descending bool) (*Tensor, *Tensor) {
	var out [2]ctensor
	lib.AtgSort(&out[0], t.c, int64(dim), b2i(descending))
	check()
	return wrap(out[0]), wrap(out[1])
}

// SearchsortedRight is torch.searchsorted(t, values, right=True): for each
// row of values (R, n), the number of entries of the matching row of t
// (R, K, non-decreasing) that are <= each value, int64 (R, n).
func (t *Tensor) SearchsortedRight(values *Tensor) *Tensor {
	var out ctensor
	lib.AtgSearchsorted(&out, t.c, values.c, 0, 1, "right", nil)
	check()
	return wrap(out)
}

func (t *Tensor) Cumsum(dim int) *Tensor {
	var out ctensor
	lib.AtgCumsum(&out, t.c, int64(dim), -1)
	check()
	return wrap(out)
}

func (t *Tensor) Logsumexp(dim int, keep bool) *Tensor {
	var out ctensor
	lib.AtgLogsumexp(&out, t.c, []int64{int64(dim)}, 1, b2i(keep))
	check()
	return wrap(out)
}

// ---------------------------------------------------------------- indexing

// Gather picks values along dim at int64 index.
func (t *Tensor) Gather(dim int, index *Tensor) *Tensor {
	var out ctensor
	lib.AtgGather(&out, t.c, int64(dim), index.c, 0)
	check()
	return wrap(out)
}

// ScatterValue is a copy of t with v written along dim at int64 index
// (torch.Tensor.scatter(dim, index, value)).
func (t *Tensor) ScatterValue(dim int, index *Tensor, v float64) *Tensor {
	s := scalarFor(t, v)
	var out ctensor
	lib.AtgScatterValue(&out, t.c, int64(dim), index.c, s)
	lib.AtsFree(s)
	check()
	return wrap(out)
}

// IndexSelect picks slices along dim at int64 index.
func (t *Tensor) IndexSelect(dim int, index *Tensor) *Tensor {
	var out ctensor
	lib.AtgIndexSelect(&out, t.c, int64(dim), index.c)
	check()
	return wrap(out)
}

// Multinomial draws n samples per row of probabilities (libtorch's global generator).
func (t *Tensor) Multinomial(n int64, replacement bool) *Tensor {
	var out ctensor
	lib.AtgMultinomial(&out, t.c, n, b2i(replacement))
	check()
	return wrap(out)
}

func (t *Tensor) Triu(diagonal int64) *Tensor {
	var out ctensor
	lib.AtgTriu(&out, t.c, diagonal)
	check()
	return wrap(out)
}

func (t *Tensor) Tril(diagonal int64) *Tensor {
	var out ctensor
	lib.AtgTril(&out, t.c, diagonal)
	check()
	return wrap(out)
}

// ---------------------------------------------------------------- conversion

// To converts dtype and device (a no-op copy is avoided by libtorch).
func (t *Tensor) To(dt DType, dev Device) *Tensor {
	var out ctensor
	lib.AtgToDevice(&out, t.c, dev.code(), int32(dt), 0, 0)
	check()
	return wrap(out)
}

// ToDType converts the element type.
func (t *Tensor) ToDType(dt DType) *Tensor {
	var out ctensor
	lib.AtgToDtype(&out, t.c, int32(dt), 0, 0)
	check()
	return wrap(out)
}

// Clone copies the data (the copy keeps autograd history).
func (t *Tensor) Clone() *Tensor {
	// gotch's AtgClone wraps clone_out; a forced dtype conversion copies.
	var out ctensor
	lib.AtgToDtype(&out, t.c, int32(t.DType()), 0, 1)
	check()
	return wrap(out)
}

// Detach shares data without autograd history.
func (t *Tensor) Detach() *Tensor { return op1(lib.AtgDetach, t) }

// Alias is another handle to the same tensor (shares data and autograd).
func (t *Tensor) Alias() *Tensor {
	c := lib.AtShallowClone(t.c)
	check()
	return wrap(c)
}

// ---------------------------------------------------------------- in place

// Copy_ copies src into t.
func (t *Tensor) Copy_(src *Tensor) {
	lib.AtCopy_(t.c, src.c)
	check()
}

func (t *Tensor) Zero_() { inplace(func(o *ctensor) { lib.AtgZero_(o, t.c) }) }

func (t *Tensor) Fill_(v float64) {
	s := lib.AtsFloat(v)
	defer lib.AtsFree(s)
	inplace(func(o *ctensor) { lib.AtgFill_(o, t.c, s) })
}

func (t *Tensor) Add_(o *Tensor) { inplace(func(out *ctensor) { lib.AtgAdd_(out, t.c, o.c) }) }
func (t *Tensor) Sub_(o *Tensor) { inplace(func(out *ctensor) { lib.AtgSub_(out, t.c, o.c) }) }
func (t *Tensor) Mul_(o *Tensor) { inplace(func(out *ctensor) { lib.AtgMul_(out, t.c, o.c) }) }
func (t *Tensor) Div_(o *Tensor) { inplace(func(out *ctensor) { lib.AtgDiv_(out, t.c, o.c) }) }

func (t *Tensor) MulScalar_(v float64) {
	s := lib.AtsFloat(v)
	defer lib.AtsFree(s)
	inplace(func(o *ctensor) { lib.AtgMulScalar_(o, t.c, s) })
}

func (t *Tensor) AddScalar_(v float64) {
	s := lib.AtsFloat(v)
	defer lib.AtsFree(s)
	inplace(func(o *ctensor) { lib.AtgAddScalar_(o, t.c, s) })
}

// Lerp_ sets t += w * (end - t).
func (t *Tensor) Lerp_(end *Tensor, w float64) {
	s := lib.AtsFloat(w)
	defer lib.AtsFree(s)
	inplace(func(o *ctensor) { lib.AtgLerp_(o, t.c, end.c, s) })
}

// Addcmul_ sets t += a * b.
func (t *Tensor) Addcmul_(a, b *Tensor) {
	inplace(func(o *ctensor) { lib.AtgAddcmul_(o, t.c, a.c, b.c) })
}

// Addcdiv_ sets t += a / b.
func (t *Tensor) Addcdiv_(a, b *Tensor) {
	inplace(func(o *ctensor) { lib.AtgAddcdiv_(o, t.c, a.c, b.c) })
}

func (t *Tensor) Sqrt_() { inplace(func(o *ctensor) { lib.AtgSqrt_(o, t.c) }) }

// MaskedFill_ sets v where mask is true, in place.
func (t *Tensor) MaskedFill_(mask *Tensor, v float64) {
	s := lib.AtsFloat(v)
	defer lib.AtsFree(s)
	inplace(func(o *ctensor) { lib.AtgMaskedFill_(o, t.c, mask.c, s) })
}

// Normal_ fills with N(mean, std) from libtorch's global generator.
func (t *Tensor) Normal_(mean, std float64) {
	inplace(func(o *ctensor) { lib.AtgNormal_(o, t.c, mean, std) })
}

// Uniform_ fills with U(lo, hi).
func (t *Tensor) Uniform_(lo, hi float64) {
	inplace(func(o *ctensor) { lib.AtgUniform_(o, t.c, lo, hi) })
}

// Norm is the 2-norm of all elements.
func (t *Tensor) Norm() *Tensor { return op1(lib.AtgNorm, t) }
