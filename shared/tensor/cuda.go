package tensor

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>

void rl_cuda_versions(int64_t *cudart, int64_t *cudnn);

// rl_cu_device asks the NVIDIA driver (libcuda.so.1, loaded at run time
// so that a CPU-only machine needs no driver) for device i's name, total
// memory and compute capability. It returns the driver's device count,
// -1 when libcuda.so.1 is absent, -2 when the driver fails to start.
typedef int (*cu_i)(int *);
typedef int (*cu_init)(unsigned);
typedef int (*cu_get)(int *, int);
typedef int (*cu_name)(char *, int, int);
typedef int (*cu_mem)(size_t *, int);
typedef int (*cu_attr)(int *, int, int);
static int rl_cu_device(int i, char *name, int name_len, size_t *mem, int *major, int *minor, int *driver) {
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return -1;
	cu_init init = (cu_init)dlsym(h, "cuInit");
	cu_i count = (cu_i)dlsym(h, "cuDeviceGetCount");
	cu_i version = (cu_i)dlsym(h, "cuDriverGetVersion");
	cu_get get = (cu_get)dlsym(h, "cuDeviceGet");
	cu_name getname = (cu_name)dlsym(h, "cuDeviceGetName");
	cu_mem total = (cu_mem)dlsym(h, "cuDeviceTotalMem_v2");
	cu_attr attr = (cu_attr)dlsym(h, "cuDeviceGetAttribute");
	int n = 0, dev = 0;
	if (!init || !count || !get || !getname || !total || !attr || init(0) != 0 || count(&n) != 0) {
		dlclose(h);
		return -2;
	}
	if (version) version(driver);
	if (i < n && get(&dev, i) == 0) {
		getname(name, name_len, dev);
		total(mem, dev);
		attr(major, 75, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
		attr(minor, 76, dev); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	}
	dlclose(h);
	return n;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// CUDAVersions are the CUDA runtime and cuDNN versions libtorch was built
// with, as "12.1" and "8.9.2"; empty for a CPU-only libtorch (and cuDNN
// empty for a build without it). The binding is rl_extra.cpp's.
func CUDAVersions() (cuda, cudnn string) {
	var rt, dnn C.int64_t
	C.rl_cuda_versions(&rt, &dnn)
	check()
	return cudaVersion(int64(rt)), cudnnVersion(int64(dnn))
}

// cudaVersion formats CUDART_VERSION (major*1000 + minor*10): 12010 is 12.1.
func cudaVersion(v int64) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// cudnnVersion formats CUDNN_VERSION: major*1000 + minor*100 + patch
// before cuDNN 9 (8902 is 8.9.2), major*10000 + minor*100 + patch from 9
// on (90100 is 9.1.0).
func cudnnVersion(v int64) string {
	switch {
	case v <= 0:
		return ""
	case v >= 90000:
		return fmt.Sprintf("%d.%d.%d", v/10000, v%10000/100, v%100)
	default:
		return fmt.Sprintf("%d.%d.%d", v/1000, v%1000/100, v%100)
	}
}

// GPU is one CUDA device as the NVIDIA driver reports it.
type GPU struct {
	Index        int
	Name         string
	MemoryBytes  uint64
	Major, Minor int // compute capability
}

// GPUs lists the driver's CUDA devices and its CUDA version ("12.4").
// It needs no CUDA libtorch: the driver (libcuda.so.1) is loaded at run
// time; without one it returns an error saying so.
func GPUs() (gpus []GPU, driver string, err error) {
	for i := 0; ; i++ {
		var name [256]C.char
		var mem C.size_t
		var major, minor, drv C.int
		n := int(C.rl_cu_device(C.int(i), &name[0], C.int(len(name)), &mem, &major, &minor, &drv))
		switch {
		case n == -1:
			return nil, "", errors.New("no NVIDIA driver (libcuda.so.1 not found)")
		case n == -2:
			return nil, "", errors.New("the NVIDIA driver (libcuda.so.1) failed to start (cuInit)")
		}
		driver = cudaVersion(int64(drv))
		if i >= n {
			return gpus, driver, nil
		}
		gpus = append(gpus, GPU{Index: i, Name: C.GoString((*C.char)(unsafe.Pointer(&name[0]))), MemoryBytes: uint64(mem), Major: int(major), Minor: int(minor)})
	}
}
