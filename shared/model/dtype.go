package model

import (
	"fmt"

	"github.com/rlsuite/rl/shared/tensor"
)

// ParamDType parses the dtype setting of the trainers and rl init: float32
// or bfloat16. float16 (and float64) are refused by name: libtorch's CPU
// LayerNorm and several other kernels have no float16 version.
func ParamDType(s string) (tensor.DType, error) {
	dt, err := tensor.ParseDType(s)
	if err != nil {
		return 0, fmt.Errorf("dtype %q: want float32 or bfloat16", s)
	}
	switch dt {
	case tensor.Float32, tensor.BFloat16:
		return dt, nil
	case tensor.Float16:
		return 0, fmt.Errorf("dtype %q: float16 is not supported (libtorch's CPU LayerNorm has no float16 kernel); use bfloat16, which has float32's range, or float32", s)
	}
	return 0, fmt.Errorf("dtype %q: want float32 or bfloat16", s)
}
