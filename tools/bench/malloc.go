package main

/*
#include <limits.h>
#include <malloc.h>
*/
import "C"

import (
	"fmt"
	"os"
)

// mallocTuned is the --malloc tuned set-up: glibc malloc never returns
// memory to the kernel between steps and serves big blocks from the heap
// instead of fresh mmaps, so that a training step reuses pages instead of
// faulting in (and zeroing) new ones. libtorch's CPU allocator is glibc
// malloc, for rl and for PyTorch alike.
var mallocEnv = map[string]string{
	"MALLOC_MMAP_MAX_":       "0",          // no mmap'd chunks: big tensors come from the heap
	"MALLOC_TRIM_THRESHOLD_": "2147483647", // never give the top of the heap back
	"MALLOC_TOP_PAD_":        "67108864",   // grow the heap 64 MB at a time
}

// tuneMalloc applies mallocEnv to this process with mallopt and exports it
// for the PyTorch child processes (glibc reads it at their start).
func tuneMalloc() error {
	if C.mallopt(C.M_MMAP_MAX, 0) == 0 || C.mallopt(C.M_TRIM_THRESHOLD, C.INT_MAX) == 0 ||
		C.mallopt(C.M_TOP_PAD, 64<<20) == 0 {
		return fmt.Errorf("mallopt failed")
	}
	for k, v := range mallocEnv {
		os.Setenv(k, v)
	}
	return nil
}
