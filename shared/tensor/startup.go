package tensor

/*
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

// rl_openblas_corename is OpenBLAS's openblas_get_corename() when the BLAS
// libtorch loaded is OpenBLAS, else NULL.
static const char *rl_openblas_corename(void) {
	char *(*f)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
	return f ? f() : NULL;
}
*/
import "C"

import (
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/cpu"
)

// The default set-up: settings that libgomp and OpenBLAS read once, when
// libtorch is loaded and before any Go code runs, so a program that wants
// them (rl, tools/bench) re-executes itself with DefaultEnv's additions.

// OMPSpinCount is the GOMP_SPINCOUNT rl runs libtorch's OpenMP threads
// with. libgomp's default (300,000 spins before sleeping at each barrier)
// is fastest alone but collapses when two processes share the cores: two
// tiny SFT runs on 2 cores took 87 s each against 7.5 s alone (9% of solo
// throughput each); with 1,000 spins, 17.3 s each (43%), and alone 7.7-8.7
// s, within this machine's run-to-run noise of the default's 7.5-8.2 s
// (README, "Threads"). OMP_WAIT_POLICY=passive gave 14.1 s paired but
// 11.1 s alone.
const OMPSpinCount = "1000"

// BLASCore is the name of the kernels OpenBLAS chose for this CPU
// ("SkylakeX", "Haswell", "Prescott", ...; OPENBLAS_CORETYPE forces one),
// or "" when libtorch's BLAS is not OpenBLAS.
func BLASCore() string {
	p := C.rl_openblas_corename()
	if p == nil {
		return ""
	}
	return strings.TrimSpace(C.GoString(p))
}

// avx512Cores are OpenBLAS's names for kernels with AVX-512 GEMMs;
// avx2Cores those with AVX2 and FMA (or better).
var (
	avx512Cores = []string{"skylakex", "cooperlake", "sapphirerapids"}
	avx2Cores   = append([]string{"haswell", "zen"}, avx512Cores...)
)

// BetterBLASCore is the OPENBLAS_CORETYPE to run with when OpenBLAS chose
// the kernels core on a CPU with AVX-512 (F, BW, DQ and VL, which OpenBLAS's
// SkylakeX kernels use) or AVX2 and FMA, and "" to keep them. OpenBLAS
// 0.3.21 (Debian 12's) knows CPUs only up to its release: on an Intel Xeon
// of family 6 model 207 (Emerald Rapids) it falls back to Prescott's SSE3
// kernels, 30 GFLOP/s float32 on 2 cores against 190 with SkylakeX's
// (2048x2048 matmul in python3-torch); on an AMD EPYC Zen 5 it picks
// Haswell's AVX2 kernels, ~97 GFLOP/s against ~180.
func BetterBLASCore(core string, avx512, avx2 bool) string {
	c := strings.ToLower(core)
	switch {
	case core == "":
		return ""
	case avx512 && !slices.Contains(avx512Cores, c):
		return "SkylakeX"
	case avx2 && !avx512 && !slices.Contains(avx2Cores, c):
		return "Haswell"
	}
	return ""
}

// BetterBLASCoreHere is BetterBLASCore for this CPU.
func BetterBLASCoreHere(core string) string { return BetterBLASCore(core, cpuAVX512(), cpuAVX2()) }

// cpuAVX512 and cpuAVX2 are the CPU's (and the OS's) support, as
// BetterBLASCore wants them.
func cpuAVX512() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL
}

func cpuAVX2() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }

// RLBLASDetected is the variable DefaultEnv sets to the kernels OpenBLAS
// had chosen itself when it sets OPENBLAS_CORETYPE (for `rl info` and the
// log of the re-executed process).
const RLBLASDetected = "RL_OPENBLAS_DETECTED"

// DefaultEnv is what rl's default set-up adds to an environment (getenv
// reads it) and why, one note an addition:
//   - GOMP_SPINCOUNT=OMPSpinCount unless GOMP_SPINCOUNT or OMP_WAIT_POLICY
//     is set (the user chose);
//   - OPENBLAS_CORETYPE=BetterBLASCore(BLASCore(), ...) (and
//     RL_OPENBLAS_DETECTED, OpenBLAS's own choice) unless OPENBLAS_CORETYPE
//     is set or OpenBLAS's choice already fits the CPU.
//
// Nothing when RL_NO_REEXEC is set: the process was re-executed already,
// or the user turned the set-up off.
func DefaultEnv(getenv func(string) string) (add, notes []string) {
	return defaultEnv(getenv, BLASCore(), cpuAVX512(), cpuAVX2())
}

func defaultEnv(getenv func(string) string, core string, avx512, avx2 bool) (add, notes []string) {
	if getenv("RL_NO_REEXEC") != "" {
		return nil, nil
	}
	if getenv("GOMP_SPINCOUNT") == "" && getenv("OMP_WAIT_POLICY") == "" {
		add = append(add, "GOMP_SPINCOUNT="+OMPSpinCount)
		notes = append(notes, "GOMP_SPINCOUNT="+OMPSpinCount+": OpenMP threads sleep soon at barriers, so processes sharing the cores keep their throughput")
	}
	if getenv("OPENBLAS_CORETYPE") == "" {
		if better := BetterBLASCore(core, avx512, avx2); better != "" {
			add = append(add, "OPENBLAS_CORETYPE="+better, RLBLASDetected+"="+core)
			notes = append(notes, "OPENBLAS_CORETYPE="+better+": OpenBLAS chose its "+core+" kernels for this CPU, whose vector units "+better+"'s use")
		}
	}
	if len(add) > 0 {
		add = append(add, "RL_NO_REEXEC=1")
	}
	return add, notes
}

// ReexecDefaultEnv re-executes this program with DefaultEnv's additions
// when there are any (rl and tools/bench call it first thing in main: libgomp
// and OpenBLAS read them when libtorch is loaded, before any Go code runs).
// It returns when there is nothing to add, or if the exec fails (the
// program then runs as is).
func ReexecDefaultEnv() {
	add, _ := DefaultEnv(os.Getenv)
	if len(add) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), add...))
}
