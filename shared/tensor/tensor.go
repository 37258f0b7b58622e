// Package tensor is rl's own thin handle over libtorch tensors, built on
// gotch's libtch bindings: explicit ownership, per-step scopes that free
// temporaries, and libtorch errors turned into Go errors.
//
// gotch's ts.Tensor wrapper costs ~11 us and leaks ~35 bytes per op (a
// finalizer, a global name registry and an unfreed output slot per tensor);
// calling libtch directly, as this package does, costs under 1 us and leaks
// nothing. See BenchmarkOpOverhead.
//
// Ownership: every op returns a new *Tensor. Inside Tidy, new tensors belong
// to the scope and are freed when it ends unless Keep is called on them; a
// kept tensor (or one created outside any scope) belongs to the caller, who
// frees it with Free. Ops panic with *Error on a libtorch failure; the
// package boundary of each caller recovers it with Recover.
//
// Tensors and scopes are not safe for concurrent use: drive libtorch from one
// goroutine (libtorch parallelises each op itself). libtorch keeps its grad
// mode and last error per OS thread, so Tidy and NoGrad lock the calling
// goroutine to its thread; a program doing tensor work elsewhere should call
// runtime.LockOSThread first (rl's main does).
package tensor

/*
#include <stdlib.h>
#include <stdint.h>
char *get_and_reset_last_err();
void *at_tensor_of_data(void *vs, int64_t *dims, size_t ndims, size_t element_size_in_bytes, int type);
void atg_gelu(void **out, void *self, char *approximate, int len);
void at_set_num_threads(int);
int at_get_num_threads();
void at_set_num_interop_threads(int);
void at_manual_seed(int64_t);
static char *tanh_str = "tanh";
static char *none_str = "none";
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// Tensor is an owned libtorch tensor.
type Tensor struct {
	c    lib.Ctensor
	kept bool
}

// DType is a libtorch scalar type.
type DType int32

// libtorch ScalarType codes.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
	noDType  DType = -1
)

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Int16, Float16, BFloat16:
		return 2
	case Int32, Float32:
		return 4
	case Int64, Float64:
		return 8
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Float16:
		return "float16"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Bool:
		return "bool"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// ParseDType reads "float32", "fp32", "bfloat16", "bf16", "float16", "fp16".
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "float32", "fp32", "f32", "float":
		return Float32, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "float16", "fp16", "f16", "half":
		return Float16, nil
	case "float64", "fp64", "double":
		return Float64, nil
	}
	return 0, fmt.Errorf("tensor: unknown dtype %q (want float32, bfloat16 or float16)", s)
}

// Device is a libtorch device. The zero value is the CPU.
type Device int32

// CPU is the host device.
const CPU Device = 0

// CUDA returns CUDA device i.
func CUDA(i int) Device { return Device(i + 1) }

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d != CPU }

// Index is a CUDA device's index (cuda:N's N); 0 for the CPU.
func (d Device) Index() int {
	if d == CPU {
		return 0
	}
	return int(d) - 1
}

// code is libtch's device number: -1 for the CPU, i for CUDA i.
func (d Device) code() int32 { return int32(d) - 1 }

func deviceOf(code int) Device { return Device(code + 1) }

func (d Device) String() string {
	if d == CPU {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", int(d)-1)
}

// ParseDevice reads "cpu", "cuda" or "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "" || s == "cpu":
		return CPU, nil
	case s == "cuda":
		if !CUDAAvailable() {
			return CPU, errors.New("tensor: --device cuda: this build's libtorch has no CUDA device available (build with LIBTORCH pointing at a CUDA libtorch)")
		}
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		var i int
		if _, err := fmt.Sscanf(s, "cuda:%d", &i); err != nil || i < 0 {
			return CPU, fmt.Errorf("tensor: bad device %q", s)
		}
		if i >= CUDADeviceCount() {
			return CPU, fmt.Errorf("tensor: device %s: only %d CUDA devices", s, CUDADeviceCount())
		}
		return CUDA(i), nil
	}
	return CPU, fmt.Errorf("tensor: unknown device %q (want cpu, cuda or cuda:N)", s)
}

// CUDAAvailable reports whether libtorch sees a CUDA device.
func CUDAAvailable() bool { return lib.AtcCudaIsAvailable() }

// CUDADeviceCount is the number of CUDA devices libtorch sees.
func CUDADeviceCount() int { return int(lib.AtcCudaDeviceCount()) }

// Error is a libtorch failure.
type Error struct{ Msg string }

func (e *Error) Error() string { return "libtorch: " + e.Msg }

// check panics with *Error if the last libtorch call failed.
func check() {
	p := C.get_and_reset_last_err()
	if p == nil {
		return
	}
	msg := C.GoString(p)
	C.free(unsafe.Pointer(p))
	// libtorch messages carry a long C++ backtrace after the first lines.
	for _, cut := range []string{"\nException raised from", "\nframe #"} {
		if i := strings.Index(msg, cut); i > 0 {
			msg = msg[:i]
		}
	}
	panic(&Error{Msg: strings.TrimSpace(msg)})
}

// Recover turns a panic carrying *Error (or any error) into *err, prefixed
// with what was being done. Use it deferred at a package boundary:
//
//	defer tensor.Recover(&err, "forward")
func Recover(err *error, what string) {
	r := recover()
	if r == nil {
		return
	}
	var e error
	switch v := r.(type) {
	case error:
		e = v
	default:
		e = fmt.Errorf("%v", v)
	}
	var te *Error
	var re runtime.Error
	if !errors.As(e, &te) && errors.As(e, &re) {
		panic(r) // a Go bug, not a libtorch failure: keep the stack
	}
	if what != "" {
		e = fmt.Errorf("%s: %w", what, e)
	}
	*err = e
}

// ---------------------------------------------------------------- scopes

type scope struct{ ts []*Tensor }

var scopes []*scope

func wrap(c lib.Ctensor) *Tensor {
	t := &Tensor{c: c}
	if n := len(scopes); n > 0 {
		s := scopes[n-1]
		s.ts = append(s.ts, t)
	}
	return t
}

// Tidy runs fn and then frees every tensor created during fn that was not
// kept, also when fn panics. Scopes nest.
//
// Tidy also locks the goroutine to its OS thread while fn runs: libtorch
// keeps the grad mode and the last error per thread.
func Tidy(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := &scope{}
	scopes = append(scopes, s)
	defer func() {
		scopes = scopes[:len(scopes)-1]
		for _, t := range s.ts {
			if !t.kept {
				t.Free()
			}
		}
	}()
	fn()
}

// ScopeLive is the number of tensors the innermost Tidy scope would free
// at its end (created in it, neither kept nor freed yet); 0 outside every
// scope. Tests use it to check how long intermediates live.
func ScopeLive() int {
	if len(scopes) == 0 {
		return 0
	}
	n := 0
	for _, t := range scopes[len(scopes)-1].ts {
		if !t.kept && t.c != nil {
			n++
		}
	}
	return n
}

// TidyErr is Tidy for a function that returns an error.
func TidyErr(fn func() error) (err error) {
	Tidy(func() { err = fn() })
	return err
}

// Keep takes t out of automatic freeing: the caller owns it now.
func (t *Tensor) Keep() *Tensor {
	t.kept = true
	return t
}

// Free releases the tensor's memory. It is safe to call twice.
func (t *Tensor) Free() {
	if t == nil || t.c == nil {
		return
	}
	lib.AtFree(t.c)
	t.c = nil
}

// Defined reports whether t holds a tensor.
func (t *Tensor) Defined() bool { return t != nil && t.c != nil && lib.AtDefined(t.c) }

// ---------------------------------------------------------------- runtime

// SetNumThreads sets libtorch's intra-op threads (libtorch starts with 1
// on some machines). n <= 0 means runtime.NumCPU().
func SetNumThreads(n int) {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	C.at_set_num_threads(C.int(n))
}

// NumThreads is libtorch's intra-op thread count.
func NumThreads() int { return int(C.at_get_num_threads()) }

// ManualSeed seeds libtorch's global generator.
func ManualSeed(seed int64) { C.at_manual_seed(C.int64_t(seed)) }

// ---------------------------------------------------------------- creation

func ofData(p unsafe.Pointer, shape []int64, dt DType) *Tensor {
	var dims *C.int64_t
	if len(shape) > 0 {
		dims = (*C.int64_t)(unsafe.Pointer(&shape[0]))
	}
	c := C.at_tensor_of_data(p, dims, C.size_t(len(shape)), C.size_t(dt.Size()), C.int(dt))
	check()
	return wrap(lib.Ctensor(c))
}

func numel(shape []int64) int {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return int(n)
}

func checkLen(n int, shape []int64) {
	if n != numel(shape) {
		panic(&Error{Msg: fmt.Sprintf("%d values for shape %v", n, shape)})
	}
}

// FromFloat32s makes a float32 CPU tensor of the given shape from v.
func FromFloat32s(v []float32, shape ...int64) *Tensor {
	checkLen(len(v), shape)
	if len(v) == 0 {
		return Zeros(shape, Float32)
	}
	return ofData(unsafe.Pointer(&v[0]), shape, Float32)
}

// FromInt64s makes an int64 CPU tensor of the given shape from v.
func FromInt64s(v []int64, shape ...int64) *Tensor {
	checkLen(len(v), shape)
	if len(v) == 0 {
		return Zeros(shape, Int64)
	}
	return ofData(unsafe.Pointer(&v[0]), shape, Int64)
}

// FromBytes makes a CPU tensor of dtype dt from raw little-endian bytes.
func FromBytes(b []byte, shape []int64, dt DType) *Tensor {
	checkLen(len(b)/dt.Size(), shape)
	if len(b) == 0 {
		return Zeros(shape, dt)
	}
	return ofData(unsafe.Pointer(&b[0]), shape, dt)
}

// Scalar makes a 0-dim float32 tensor.
func Scalar(v float32) *Tensor { return ofData(unsafe.Pointer(&v), nil, Float32) }

// Zeros makes a zero tensor on the CPU.
func Zeros(shape []int64, dt DType) *Tensor { return ZerosOn(shape, dt, CPU) }

// ZerosOn makes a zero tensor on a device.
func ZerosOn(shape []int64, dt DType, dev Device) *Tensor {
	var out lib.Ctensor
	lib.AtgZeros(&out, nonEmpty(shape), len(shape), int32(dt), dev.code())
	check()
	return wrap(out)
}

// Ones makes a tensor of ones.
func Ones(shape []int64, dt DType, dev Device) *Tensor {
	var out lib.Ctensor
	lib.AtgOnes(&out, nonEmpty(shape), len(shape), int32(dt), dev.code())
	check()
	return wrap(out)
}

// Full makes a tensor filled with v.
func Full(shape []int64, v float64, dt DType, dev Device) *Tensor {
	s := lib.AtsFloat(v)
	defer lib.AtsFree(s)
	var out lib.Ctensor
	lib.AtgFull(&out, nonEmpty(shape), len(shape), s, int32(dt), dev.code())
	check()
	return wrap(out)
}

// Arange makes [start, end) as int64.
func Arange(start, end int64, dev Device) *Tensor {
	a, b := lib.AtsInt(start), lib.AtsInt(end)
	defer lib.AtsFree(a)
	defer lib.AtsFree(b)
	var out lib.Ctensor
	lib.AtgArangeStart(&out, a, b, int32(Int64), dev.code())
	check()
	return wrap(out)
}

// Randn makes a standard-normal tensor from libtorch's global generator.
func Randn(shape []int64, dt DType, dev Device) *Tensor {
	var out lib.Ctensor
	lib.AtgRandn(&out, nonEmpty(shape), len(shape), int32(dt), dev.code())
	check()
	return wrap(out)
}

// nonEmpty keeps gotch's wrappers from indexing an empty slice.
func nonEmpty(s []int64) []int64 {
	if len(s) == 0 {
		return []int64{0}
	}
	return s
}

// ---------------------------------------------------------------- accessors

// Dim is the number of dimensions.
func (t *Tensor) Dim() int { return int(lib.AtDim(t.c)) }

// Shape is the size of each dimension.
func (t *Tensor) Shape() []int64 {
	n := t.Dim()
	s := make([]int64, n)
	if n > 0 {
		lib.AtShape(t.c, unsafe.Pointer(&s[0]))
	}
	check()
	return s
}

// Size returns the size of dimension d (negative counts from the end).
func (t *Tensor) Size(d int) int64 {
	s := t.Shape()
	if d < 0 {
		d += len(s)
	}
	return s[d]
}

// Numel is the element count.
func (t *Tensor) Numel() int { return numel(t.Shape()) }

// DType is the element type.
func (t *Tensor) DType() DType { return DType(lib.AtScalarType(t.c)) }

// Device is where the tensor lives.
func (t *Tensor) Device() Device { return deviceOf(lib.AtDevice(t.c)) }

// Float32s copies the tensor's values to Go (converting to float32 first if needed).
func (t *Tensor) Float32s() []float32 {
	src := t
	if t.DType() != Float32 || t.Device() != CPU {
		src = t.To(Float32, CPU)
		defer src.Free()
	}
	n := src.Numel()
	v := make([]float32, n)
	if n > 0 {
		lib.AtCopyData(src.c, unsafe.Pointer(&v[0]), uint(n), 4)
		check()
	}
	return v
}

// Float64s copies the values to Go as float64 (converting first if needed).
func (t *Tensor) Float64s() []float64 {
	src := t
	if t.DType() != Float64 || t.Device() != CPU {
		src = t.To(Float64, CPU)
		defer src.Free()
	}
	n := src.Numel()
	v := make([]float64, n)
	if n > 0 {
		lib.AtCopyData(src.c, unsafe.Pointer(&v[0]), uint(n), 8)
		check()
	}
	return v
}

// Int64s copies the tensor's values to Go (converting to int64 if needed).
func (t *Tensor) Int64s() []int64 {
	src := t
	if t.DType() != Int64 || t.Device() != CPU {
		src = t.To(Int64, CPU)
		defer src.Free()
	}
	n := src.Numel()
	v := make([]int64, n)
	if n > 0 {
		lib.AtCopyData(src.c, unsafe.Pointer(&v[0]), uint(n), 8)
		check()
	}
	return v
}

// Bytes copies the raw contiguous CPU bytes of the tensor in its own dtype.
func (t *Tensor) Bytes() []byte {
	src := t
	if t.Device() != CPU {
		src = t.To(t.DType(), CPU)
		defer src.Free()
	}
	n := src.Numel()
	es := src.DType().Size()
	b := make([]byte, n*es)
	if n > 0 {
		lib.AtCopyData(src.c, unsafe.Pointer(&b[0]), uint(n), uint(es))
		check()
	}
	return b
}

// Item returns the single value of a one-element tensor as float64.
func (t *Tensor) Item() float64 {
	v := t.Float32s()
	if len(v) != 1 {
		panic(&Error{Msg: fmt.Sprintf("Item of a tensor with %d elements", len(v))})
	}
	return float64(v[0])
}

// ItemF64 returns the single value, read in float64 precision.
func (t *Tensor) ItemF64() float64 {
	v := t.Float64s()
	if len(v) != 1 {
		panic(&Error{Msg: fmt.Sprintf("Item of a tensor with %d elements", len(v))})
	}
	return v[0]
}

// String summarises the tensor.
func (t *Tensor) String() string {
	if t == nil || t.c == nil {
		return "Tensor(freed)"
	}
	return fmt.Sprintf("Tensor(%v %s %s)", t.Shape(), t.DType(), t.Device())
}

// MinValue is the most negative finite value of dt, as Hugging Face uses for masking.
func MinValue(dt DType) float64 {
	switch dt {
	case Float16:
		return -65504
	case BFloat16:
		return -3.3895313892515355e+38
	case Float64:
		return -math.MaxFloat64
	}
	return -math.MaxFloat32
}

// ---------------------------------------------------------------- batches on a device

// Int64sOn makes an int64 tensor of the given shape from v on dev: the one
// way trainers build batch tensors (ids, masks, positions, labels, index
// vectors) on their model's device. The host copy is freed at once when
// dev is not the CPU, so only the device tensor is left to free.
func Int64sOn(v []int64, dev Device, shape ...int64) *Tensor {
	return onDevice(FromInt64s(v, shape...), Int64, dev)
}

// Float32sOn makes a tensor of dtype dt and the given shape from v on dev
// (per-row weights, masks, advantages, reference log-probs), as Int64sOn.
func Float32sOn(v []float32, dt DType, dev Device, shape ...int64) *Tensor {
	return onDevice(FromFloat32s(v, shape...), dt, dev)
}

// onDevice converts host to dt on dev and frees host when that made a
// new tensor (To returns the same storage when nothing changes).
func onDevice(host *Tensor, dt DType, dev Device) *Tensor {
	if host.DType() == dt && dev == CPU {
		return host
	}
	out := host.To(dt, dev)
	host.Free()
	return out
}
