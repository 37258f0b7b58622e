package main

import (
	"os"
	"syscall"
)

// benchSpinCount is the GOMP_SPINCOUNT the rl binary runs with (cmd/rl's
// ompSpinCount): the bench measures rl's default set-up, so it re-executes
// itself with it unless GOMP_SPINCOUNT, OMP_WAIT_POLICY or RL_NO_REEXEC is
// set. The PyTorch processes inherit the environment, as under rl compare.
// Alone on the cores it is within noise of libgomp's default spinning; on
// a busy machine it keeps both sides from spinning against other processes.
const benchSpinCount = "1000"

// reexecOpenMP re-executes the bench with GOMP_SPINCOUNT set (libgomp reads
// it when libtorch is loaded, before main); it returns if it does not.
func reexecOpenMP() {
	for _, k := range []string{"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "RL_NO_REEXEC"} {
		if os.Getenv(k) != "" {
			return
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), "GOMP_SPINCOUNT="+benchSpinCount, "RL_NO_REEXEC=1"))
}
