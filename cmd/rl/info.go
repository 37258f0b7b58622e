package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func infoCommand(log *zerolog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "Show the runtime (threads, BLAS, devices) and, with --model, a checkpoint's shape",
		Flags: []cli.Flag{&cli.StringFlag{Name: "model", Usage: "checkpoint directory"}},
		Action: func(c *cli.Context) error {
			fmt.Printf("rl %s, %s\n", version, runtime.Version())
			fmt.Printf("libtorch threads: %d (cores: %d)\n", tensor.NumThreads(), runtime.NumCPU())
			fmt.Printf("BLAS: %s%s\n", blasInUse(), blasKernels())
			fmt.Printf("OpenMP: %s\n", ompWait())
			fmt.Print(cudaInfo())
			nccl := "no (a CPU libtorch)"
			if dist.NCCLBuilt() {
				nccl = "yes"
			}
			fmt.Printf("data parallel (rl launch, torchrun): gloo on CPU; NCCL built: %s\n", nccl)
			fmt.Printf("bfloat16 on this CPU (for --bf16): %s\n", bf16Support())
			dir, err := hubFlag(c, "model")
			if err != nil || dir == "" {
				return err
			}
			cfg, err := model.ReadConfig(filepath.Join(dir, "config.json"))
			if err != nil {
				return err
			}
			head := model.LMHead
			if cfg.NumLabels > 0 || cfg.Encoder() {
				head = model.ScoreHead
			}
			m, err := model.Load(dir, model.LoadOptions{Head: head})
			if err != nil {
				return err
			}
			defer m.Free()
			fmt.Printf("model: %s (%s), %d layers, %d heads (%d kv), width %d, vocab %d, %d positions, %.2fM parameters\n",
				cfg.ModelType, strings.Join(m.Config.Architectures, ","), cfg.NumLayers, cfg.NumHeads, cfg.NumKVHeads, cfg.HiddenSize, cfg.VocabSize, cfg.MaxPositions, float64(m.NumParams())/1e6)
			if tok, err := tokenizer.Load(dir); err == nil {
				fmt.Printf("tokenizer: %d tokens, bos %d, eos %d, pad %d, chat template: %v\n", tok.VocabSize(), tok.BOS(), tok.EOS(), tok.PAD(), tok.ChatTemplate() != "")
			} else {
				fmt.Printf("tokenizer: %v\n", err)
			}
			return nil
		},
	}
}

// cudaInfo is rl info's CUDA section: what libtorch sees and was built
// with (CUDA runtime, cuDNN), then each GPU the NVIDIA driver reports,
// with its memory and compute capability (the driver is asked directly,
// so a CPU-only libtorch on a GPU machine still shows its GPUs).
func cudaInfo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CUDA available to libtorch: %v, devices: %d\n", tensor.CUDAAvailable(), tensor.CUDADeviceCount())
	cuda, cudnn := tensor.CUDAVersions()
	if cuda == "" {
		b.WriteString("libtorch build: CPU only (no CUDA runtime, no cuDNN)\n")
	} else {
		if cudnn == "" {
			cudnn = "none"
		}
		fmt.Fprintf(&b, "libtorch build: CUDA %s, cuDNN %s\n", cuda, cudnn)
	}
	gpus, driver, err := tensor.GPUs()
	if err != nil {
		fmt.Fprintf(&b, "GPUs: none (%v)\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "GPUs: %d (driver's CUDA %s)\n", len(gpus), driver)
	for _, g := range gpus {
		fmt.Fprintf(&b, "  cuda:%d %s, %.1f GiB, compute capability %d.%d\n", g.Index, g.Name, float64(g.MemoryBytes)/(1<<30), g.Major, g.Minor)
	}
	return b.String()
}

// bf16Support names the CPU's bfloat16 matrix instructions (from
// /proc/cpuinfo): AMX and AVX-512 BF16 make --bf16 fast; without them
// libtorch computes bfloat16 in software and --bf16 likely loses to float32.
func bf16Support() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	var flags []string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	var have []string
	for _, f := range []string{"amx_bf16", "avx512_bf16"} {
		if slices.Contains(flags, f) {
			have = append(have, f)
		}
	}
	if len(have) == 0 {
		have = append(have, "none")
	}
	bf, fp, err := tensor.BF16Speed()
	if err != nil {
		return strings.Join(have, ", ")
	}
	verdict := "--bf16 is faster here"
	if bf < fp {
		verdict = "--bf16 is slower than float32 here"
	}
	return fmt.Sprintf("%s; 1024³ matmul %.0f GFLOP/s in bfloat16, %.0f in float32: %s", strings.Join(have, ", "), bf, fp, verdict)
}

// blasKernels says which OpenBLAS kernels run and who chose them.
func blasKernels() string {
	core := tensor.BLASCore()
	switch {
	case core == "":
		return ""
	case os.Getenv(tensor.RLBLASDetected) != "":
		return fmt.Sprintf(" (OpenBLAS, %s kernels: rl set OPENBLAS_CORETYPE=%s, as OpenBLAS chose %s for this CPU)", core, os.Getenv("OPENBLAS_CORETYPE"), os.Getenv(tensor.RLBLASDetected))
	case os.Getenv("OPENBLAS_CORETYPE") != "":
		return fmt.Sprintf(" (OpenBLAS, %s kernels: OPENBLAS_CORETYPE=%s from the environment)", core, os.Getenv("OPENBLAS_CORETYPE"))
	}
	return fmt.Sprintf(" (OpenBLAS, %s kernels, its own choice)", core)
}

// ompWait is libgomp's barrier waiting as this process runs it.
func ompWait() string {
	if v := os.Getenv("OMP_WAIT_POLICY"); v != "" {
		return "OMP_WAIT_POLICY=" + v
	}
	if v := os.Getenv("GOMP_SPINCOUNT"); v == tensor.OMPSpinCount {
		return "GOMP_SPINCOUNT=" + v + " (rl's default: threads sleep soon at barriers, for sharing the cores)"
	} else if v != "" {
		return "GOMP_SPINCOUNT=" + v
	}
	return "libgomp's defaults"
}

// blasInUse names the BLAS libraries mapped into this process.
func blasInUse() string {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	seen := map[string]bool{}
	var libs []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[5], "blas") {
			continue
		}
		p, err := filepath.EvalSymlinks(f[5])
		if err != nil {
			p = f[5]
		}
		if !seen[p] {
			seen[p] = true
			libs = append(libs, p)
		}
	}
	if len(libs) == 0 {
		return "none loaded"
	}
	return strings.Join(libs, ", ")
}
