package main

import (
	"os"
	"syscall"

	"github.com/rlsuite/rl/shared/tensor"
)

// reexecDefaultSetup re-executes the bench with the rl binary's default
// set-up (tensor.DefaultEnv: GOMP_SPINCOUNT, and OPENBLAS_CORETYPE where
// OpenBLAS's own choice does not fit the CPU), which libgomp and OpenBLAS
// read when libtorch is loaded, before main: the bench measures rl's
// default set-up, and the PyTorch processes inherit the environment, as
// under rl compare. It returns if it does not re-execute (RL_NO_REEXEC, or
// the user set those variables).
func reexecDefaultSetup() {
	add, _ := tensor.DefaultEnv(os.Getenv)
	if len(add) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), add...))
}
