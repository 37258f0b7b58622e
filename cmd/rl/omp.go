package main

import (
	"os"
	"syscall"
)

// ompSpinCount is the GOMP_SPINCOUNT rl runs libtorch's OpenMP threads
// with. libgomp's default (300,000 spins before sleeping at each barrier)
// is fastest alone but collapses when two processes share the cores: two
// tiny SFT runs on 2 cores took 87 s each against 7.5 s alone (9% of solo
// throughput each); with 1,000 spins, 17.3 s each (43%), and alone 7.7-8.7
// s, within this machine's run-to-run noise of the default's 7.5-8.2 s
// (README, "Threads"). OMP_WAIT_POLICY=passive gave 14.1 s paired but
// 11.1 s alone.
const ompSpinCount = "1000"

// cooperativeOpenMP re-executes rl with GOMP_SPINCOUNT set when the user
// set neither it nor OMP_WAIT_POLICY: libgomp reads them when libtorch is
// loaded, before any Go code runs. RL_NO_REEXEC=1 turns it off.
func cooperativeOpenMP() {
	env, ok := ompEnv(os.Getenv, os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return // run as is
	}
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure: then run as is
}

// ompEnv is the environment to re-execute with, and whether to.
func ompEnv(getenv func(string) string, environ []string) ([]string, bool) {
	for _, k := range []string{"GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "RL_NO_REEXEC"} {
		if getenv(k) != "" {
			return nil, false
		}
	}
	return append(environ, "GOMP_SPINCOUNT="+ompSpinCount, "RL_NO_REEXEC=1"), true
}
