package tensor

/*
#include <limits.h>
#include <malloc.h>
*/
import "C"

import (
	"fmt"
	"os"
)

// TuneMalloc sets glibc malloc, which is libtorch's CPU allocator, for
// training: big tensors (activations, gradients, logits) are allocated and
// freed every step, and with glibc's defaults each one above the dynamic
// mmap threshold is a fresh mmap whose pages the kernel faults in and
// zeroes again, and freed heap tops are trimmed back to the kernel.
// mode "heap" serves every block from the heap (no mmap'd chunks) and never
// trims it, so a step reuses the previous step's pages; "default" leaves
// glibc alone. RL_MALLOC overrides mode; a MALLOC_* or GLIBC_TUNABLES
// setting in the environment means the user chose, and nothing is changed.
// It returns what it did, for the log.
func TuneMalloc(mode string) (string, error) {
	if m := os.Getenv("RL_MALLOC"); m != "" {
		mode = m
	}
	for _, k := range []string{"GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"} {
		if os.Getenv(k) != "" {
			return "left to " + k + " from the environment", nil
		}
	}
	switch mode {
	case "default":
		return "glibc defaults", nil
	case "heap":
		if C.mallopt(C.M_MMAP_MAX, 0) == 0 || C.mallopt(C.M_TRIM_THRESHOLD, C.INT_MAX) == 0 || C.mallopt(C.M_TOP_PAD, 64<<20) == 0 {
			return "", fmt.Errorf("mallopt failed")
		}
		return "heap: no mmap'd chunks, no trimming, 64 MB top pad", nil
	case "threshold":
		if C.mallopt(C.M_MMAP_THRESHOLD, 32<<20) == 0 || C.mallopt(C.M_TRIM_THRESHOLD, C.INT_MAX) == 0 {
			return "", fmt.Errorf("mallopt failed")
		}
		return "threshold: mmap only above 32 MB, no trimming", nil
	}
	return "", fmt.Errorf("RL_MALLOC %q: want heap, threshold or default", mode)
}

// MallocTrim returns the heap's free memory to the kernel (glibc's
// malloc_trim(0)). Under TuneMalloc's "heap" set-up nothing is trimmed
// otherwise, so a process's RSS stays at its largest phase's until it
// exits; a bench measuring one workload's peak after another's trims first.
func MallocTrim() { C.malloc_trim(0) }
