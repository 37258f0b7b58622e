package tensor

/*
int at_grad_set_enabled(int);
int rl_autocast_cpu_enter(int);
void rl_autocast_cpu_exit(int);
int rl_autocast_cpu_enabled();
*/
import "C"

import (
	"runtime"

	lib "github.com/sugarme/gotch/libtch"
)

// gradSetEnabled calls libtorch directly: gotch's AtGradSetEnabled reads
// its 4-byte C int result as an 8-byte Go int, returning garbage.
func gradSetEnabled(b int) int { return int(C.at_grad_set_enabled(C.int(b))) }

// SetRequiresGrad marks t as a leaf that accumulates gradients.
func (t *Tensor) SetRequiresGrad(b bool) {
	inplace(func(o *ctensor) { lib.AtgRequiresGrad_(o, t.c, b2i(b)) })
}

// RequiresGrad reports whether autograd tracks t.
func (t *Tensor) RequiresGrad() bool {
	r := lib.AtRequiresGrad(t.c)
	check()
	return r
}

// Grad returns t's accumulated gradient (a handle sharing its memory), or
// nil when there is none.
func (t *Tensor) Grad() *Tensor {
	var out ctensor
	lib.AtgGrad(&out, t.c)
	check()
	if out == nil || !lib.AtDefined(out) {
		if out != nil {
			lib.AtFree(out)
		}
		return nil
	}
	return wrap(out)
}

// ZeroGrad drops t's gradient (set_to_none semantics, as HF's trainer uses).
func (t *Tensor) ZeroGrad() {
	g := t.Grad()
	if g == nil {
		return
	}
	// Assigning an undefined tensor to .grad is not exposed by libtch;
	// zeroing in place keeps the buffer, which is also what saves an
	// allocation on the next backward.
	g.Zero_()
	g.Free()
}

// Backward runs autograd from a scalar t.
func (t *Tensor) Backward() {
	lib.AtBackward(t.c, 0, 0)
	check()
}

// GradEnabled reports whether autograd records ops.
func GradEnabled() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := gradSetEnabled(1)
	gradSetEnabled(prev)
	return prev != 0
}

// NoGrad runs fn with autograd off and restores the previous mode, also
// when fn panics. It nests.
func NoGrad(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := gradSetEnabled(0)
	defer gradSetEnabled(prev)
	fn()
}

// Autocast runs fn under libtorch's CPU autocast to dtype (BFloat16 is
// what HF's bf16=True uses on CPU): matmuls and linear layers compute in
// dtype, on AMX where the CPU has it, while float32-sensitive ops stay in
// float32 and parameters stay float32 (master weights). Gradients flow back
// to the float32 parameters. It nests, and restores the previous state also
// when fn panics; casts of the same weight are cached until the outermost
// Autocast returns, as torch.autocast does.
//
// The binding is added to libtch by tools/setup (rl_extra.cpp).
func Autocast(dtype DType, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	was := int(C.rl_autocast_cpu_enter(C.int(dtype)))
	check()
	defer func() {
		C.rl_autocast_cpu_exit(C.int(was))
		check()
	}()
	fn()
}

// AutocastEnabled reports whether CPU autocast is on in this thread.
func AutocastEnabled() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return C.rl_autocast_cpu_enabled() == 1
}
