package main

import (
	"os"
	"syscall"

	"github.com/rlsuite/rl/shared/tensor"
)

// defaultSetup re-executes rl with tensor.DefaultEnv's additions (the
// cooperative GOMP_SPINCOUNT, OpenBLAS's kernels for this CPU) when there
// are any: libgomp and OpenBLAS read them when libtorch is loaded, before
// any Go code runs. RL_NO_REEXEC=1, or setting the variables yourself,
// turns it off.
func defaultSetup() {
	add, _ := tensor.DefaultEnv(os.Getenv)
	if len(add) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return // run as is
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), add...)) // returns only on failure: then run as is
}
