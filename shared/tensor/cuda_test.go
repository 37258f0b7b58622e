package tensor

import (
	"strings"
	"testing"
)

// TestVersionFormats: CUDART_VERSION and CUDNN_VERSION as their headers
// define them (cuda_runtime_api.h: major*1000 + minor*10; cudnn_version.h:
// major*1000 + minor*100 + patch before 9, major*10000 + minor*100 + patch
// from 9 on), formatted as torch.version.cuda and torch.backends.cudnn.version() read.
func TestVersionFormats(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{{12010, "12.1"}, {11080, "11.8"}, {12040, "12.4"}, {0, ""}} {
		if got := cudaVersion(c.v); got != c.want {
			t.Errorf("cudaVersion(%d) = %q, want %q", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		v    int64
		want string
	}{{8902, "8.9.2"}, {8700, "8.7.0"}, {90100, "9.1.0"}, {90300, "9.3.0"}, {0, ""}} {
		if got := cudnnVersion(c.v); got != c.want {
			t.Errorf("cudnnVersion(%d) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestCUDAInfoOnThisBuild: a CPU-only libtorch reports no CUDA runtime or
// cuDNN; without an NVIDIA driver GPUs says so instead of failing.
func TestCUDAInfoOnThisBuild(t *testing.T) {
	cuda, cudnn := CUDAVersions()
	if cuda == "" && cudnn != "" {
		t.Errorf("cuDNN %q without a CUDA runtime", cudnn)
	}
	if CUDAAvailable() && cuda == "" {
		t.Errorf("libtorch sees CUDA devices but reports no CUDA runtime version")
	}
	gpus, driver, err := GPUs()
	if err != nil {
		if !strings.Contains(err.Error(), "NVIDIA driver") {
			t.Errorf("GPUs error %q does not name the driver", err)
		}
		return
	}
	t.Logf("driver CUDA %s, %d GPUs: %+v", driver, len(gpus), gpus)
	for _, g := range gpus {
		if g.Name == "" || g.MemoryBytes == 0 {
			t.Errorf("GPU %+v: no name or memory", g)
		}
	}
}

// TestBatchOnDevice: Int64sOn and Float32sOn make the values in the shape,
// dtype and device asked (CPU here; the same code moves to cuda on a GPU
// machine), and a dtype conversion keeps the values.
func TestBatchOnDevice(t *testing.T) {
	Tidy(func() {
		ids := Int64sOn([]int64{3, 1, 4, 1, 5, 9}, CPU, 2, 3)
		if got := ids.Shape(); len(got) != 2 || got[0] != 2 || got[1] != 3 || ids.DType() != Int64 || ids.Device() != CPU {
			t.Fatalf("Int64sOn: %v", ids)
		}
		if v := ids.Int64s(); v[5] != 9 || v[0] != 3 {
			t.Errorf("Int64sOn values %v", v)
		}
		m := Float32sOn([]float32{1, 0, 0.5, 0.25}, Float64, CPU, 4)
		if m.DType() != Float64 || m.Device() != CPU {
			t.Fatalf("Float32sOn: %v", m)
		}
		if v := m.Float64s(); v[2] != 0.5 || v[3] != 0.25 {
			t.Errorf("Float32sOn values %v", v)
		}
		b := Float32sOn([]float32{1.5, -2}, BFloat16, CPU, 2) // exact in bfloat16
		if v := b.Float32s(); b.DType() != BFloat16 || v[0] != 1.5 || v[1] != -2 {
			t.Errorf("Float32sOn bf16: %v %v", b, v)
		}
	})
}

// TestDeviceIndex: cuda:N's index, and the CPU's 0 (gloo ignores it).
func TestDeviceIndex(t *testing.T) {
	if CUDA(3).Index() != 3 || !CUDA(3).IsCUDA() || CPU.Index() != 0 || CPU.IsCUDA() {
		t.Errorf("Index/IsCUDA: cuda:3 -> %d %v, cpu -> %d %v", CUDA(3).Index(), CUDA(3).IsCUDA(), CPU.Index(), CPU.IsCUDA())
	}
}
