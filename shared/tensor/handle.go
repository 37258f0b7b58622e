package tensor

import "unsafe"

// Handle is t's libtorch tensor (an at::Tensor*), for rl's own cgo shims
// (shared/dist) that hand tensors to C++. It stays valid while t does.
func (t *Tensor) Handle() unsafe.Pointer { return unsafe.Pointer(t.c) }
