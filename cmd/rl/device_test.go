package main

import (
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestWorldDevice: a data-parallel rank's --device: cpu stays the CPU
// (gloo), plain cuda is the rank's own GPU cuda:LOCAL_RANK (NCCL); where
// that GPU does not exist the error names the rank and what to do.
func TestWorldDevice(t *testing.T) {
	env := dist.Env{Rank: 3, WorldSize: 4, LocalRank: 1, LocalWorldSize: 2}
	if d, err := worldDevice("cpu", env); err != nil || d != tensor.CPU {
		t.Errorf("cpu: %v %v", d, err)
	}
	d, err := worldDevice("cuda", env)
	if tensor.CUDADeviceCount() > 1 {
		if err != nil || d != tensor.CUDA(1) {
			t.Errorf("cuda on LOCAL_RANK 1: %v %v, want cuda:1", d, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "--device cuda on rank 3 (LOCAL_RANK 1)") || !strings.Contains(err.Error(), "as many processes per node as GPUs") {
		t.Errorf("cuda without that GPU: %v", err)
	}
}
