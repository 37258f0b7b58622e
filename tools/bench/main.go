// Command bench measures rl and, in the same run, plain PyTorch
// (../shared/bench/torch_ref.py on the same libtorch) on the same shapes, and
// prints the ratios: SFT and DPO training steps, sampling with and without
// the KV cache, peak memory, per-op overhead and memory growth over a long
// run. The machines are shared and noisy: read the ratios, not the absolute
// figures. Run it as `go tool task bench -- [flags]` or
// `go run ./tools/bench [flags]` from the repository root.
//
//	go run ./tools/bench --quick                 # tiny only, fewer runs (~2 minutes)
//	go run ./tools/bench --config tiny           # the full tiny set
//	go run ./tools/bench --only sft --config gpt2s
//	go run ./tools/bench --only breakdown        # where an SFT step's time goes, rl vs PyTorch
//	go run ./tools/bench --long                  # also GPT-2 small at seq 512/1024 and TinyLlama's shape in bf16
//	go run ./tools/bench --markdown              # the README's section from bench-results.json
//	go run ./tools/bench --only memory_1b        # issue 13's memory table: full FT, LoRA, QLoRA, DPO references on TinyLlama's shape (25-40 minutes, ~22 GB)
//
// Every training row has its MFU over the GEMM peaks of the same run
// (mfu.go). Every figure goes to bench-results.json (--json).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rlsuite/rl/shared/tensor"
)

func init() {
	// libtorch keeps grad mode and errors per OS thread (and OpenMP a thread
	// pool per calling thread): keep main's goroutine on one thread.
	runtime.LockOSThread()
}

const (
	higher = "higher"
	lower  = "lower"
)

// Result is one row of the table.
type Result struct {
	Name        string         `json:"name"`
	Config      string         `json:"config"`
	Unit        string         `json:"unit"`
	Better      string         `json:"better,omitempty"` // higher, lower, or "" for checks
	RL          float64        `json:"rl"`
	RLStats     *Stats         `json:"rl_stats,omitempty"`
	Torch       *float64       `json:"pytorch,omitempty"`
	TorchRecord torchRecord    `json:"pytorch_record,omitempty"`
	TorchNote   string         `json:"pytorch_note,omitempty"`
	Ratio       *float64       `json:"ratio_rl_over_pytorch,omitempty"`
	Target      string         `json:"target,omitempty"`
	Pass        *bool          `json:"pass,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`

	// FlopsPerUnit is the model FLOPs of one unit of a training row (see
	// mfu.go); Precision names the GEMM peak its MFU is over (fp32, bf16),
	// TorchPrecision PyTorch's when it differs.
	FlopsPerUnit   float64  `json:"flops_per_unit,omitempty"`
	Precision      string   `json:"precision,omitempty"`
	TorchPrecision string   `json:"pytorch_precision,omitempty"`
	MFU            *float64 `json:"mfu,omitempty"`
	TorchMFU       *float64 `json:"pytorch_mfu,omitempty"`

	// torchValue finds the PyTorch figure in torch_ref.py's run (default:
	// the record with the same name and config).
	torchValue func(*torchRun) (float64, torchRecord, error)
	// pass judges rl's value against an absolute target (default: for a
	// throughput, ratio >= minRatio, or 1).
	pass     func(float64) bool
	minRatio float64
	// minMFU, when set, is the target instead: MFU >= minMFU.
	minMFU float64
}

// ---------------------------------------------------------------- the bench table

// benchDef is one benchmark: rl's side, and torch_ref.py's --bench that
// measures the same workload in plain PyTorch ("" when there is none).
type benchDef struct {
	Name    string   // the --only name
	Configs []string // shapes it runs on; nil: one run, no shape
	// LongConfigs are shapes it runs on with --long only (minutes a step).
	LongConfigs []string
	Default     bool   // in the default set
	Torch       string // torch_ref.py --bench value
	// Params are torch_ref.py's defaults for this bench and config (before
	// --quick and the --warmup/--runs/--steps overrides).
	Params func(config string) measureParams
	RL     func(e *env, config string, p measureParams) ([]*Result, error)
}

// refParams are torch_ref.py's defaults: warm-up 1 for big configs, else 2
// for sampling and 3 for training; steps 2 for big configs, else sft 10,
// dpo 5, sample 2; 5 runs.
func refParams(bench string) func(string) measureParams {
	return func(config string) measureParams {
		p := measureParams{Runs: 5, Retries: 2, QuietThresh: 0.15, QuietWait: 30}
		if strings.Contains(config, "-") { // the long shapes: seconds to minutes a step
			p.Warmup, p.Steps, p.Runs = 1, 1, 3
			return p
		}
		if config != "tiny" {
			p.Warmup, p.Steps = 1, 2
			return p
		}
		p.Warmup = map[string]int{"sample": 2}[bench]
		if p.Warmup == 0 {
			p.Warmup = 3
		}
		p.Steps = map[string]int{"sft": 10, "dpo": 5, "sample": 2}[bench]
		return p
	}
}

// ppoParams: one warm-up update, then five timed ones (each ~2 s on tiny).
func ppoParams(string) measureParams {
	return measureParams{Warmup: 1, Runs: 5, Retries: 0, QuietThresh: 0.15, QuietWait: 30}
}

// benches is the table of measurements, run in this order (SFT first, so
// that the peak RSS after it is SFT's).
//
// ==> Later trainers add their measurement here: an RL function that builds
// the workload exactly as torch_ref.py's function of the same name does, and
// Torch set to torch_ref.py's --bench for it (or a torchValue taking
// another bench's figure, as ppo does with sampling).
var benches = []benchDef{
	{Name: "gemm", Default: true, Params: gemmParams, RL: rlGEMM},
	{Name: "sft", Configs: []string{"tiny", "gpt2s", "tiny-512", "tiny-1024"}, LongConfigs: []string{"gpt2s-512", "gpt2s-1024"},
		Default: true, Torch: "sft", Params: refParams("sft"), RL: rlSFT},
	{Name: "dpo", Configs: []string{"tiny", "tiny-512"}, Default: true, Torch: "dpo", Params: refParams("dpo"), RL: rlDPO},
	{Name: "sft_llama", Configs: []string{}, LongConfigs: []string{"tinyllama-512"}, Default: true, Torch: "sft_llama",
		Params: refParams("sft"), RL: rlSFTLlama},
	{Name: "sample", Configs: []string{"tiny"}, Default: true, Torch: "sample", Params: refParams("sample"), RL: rlSample},
	{Name: "grpo_rollout", Configs: []string{"tiny"}, Default: true, Params: refParams("sample"), RL: rlGRPORollout},
	{Name: "grpo_step", Configs: []string{"tiny"}, Default: true, Params: ppoParams, RL: rlGRPOStep},
	{Name: "ppo", Configs: []string{"tiny"}, Default: true, Params: ppoParams, RL: rlPPO},
	{Name: "ops", Default: true, RL: rlOps},
	{Name: "memory", Default: true, RL: rlMemory},
	{Name: "share", Default: true, RL: rlShare},
	{Name: "scaling", Default: true, RL: rlScaling},
	{Name: "breakdown", Configs: []string{"tiny", "gpt2s"}, Default: false, Params: refParams("sft"), RL: rlBreakdown},
	// issue 13's memory table (memory1b.go): 8 rl processes on TinyLlama's shape, 25-40 minutes
	{Name: "memory_1b", Default: false, RL: rlMemory1B},
}

// ---------------------------------------------------------------- options

type options struct {
	threads     int
	torchRef    string
	python      string
	noTorch     bool
	only        map[string]bool
	configs     map[string]bool
	quick       bool
	warmup      int
	runs        int
	steps       int
	retries     int
	quietWait   float64
	quietThresh float64
	ops         int
	memSteps    int
	jsonPath    string
	malloc      string
	interleave  bool
	long        bool
	memConfigs  string
}

type env struct {
	opts      *options
	torch     *torchRunner
	root      string
	torchRuns map[string]*torchRun // by bench/config: each torch_ref.py run once
	rep       *report
}

// torchRun runs torch_ref.py for bench and config, or returns this run's
// earlier result for them.
func (e *env) torchRun(bench, config string, p measureParams) *torchRun {
	key := bench + "/" + config
	if r, ok := e.torchRuns[key]; ok {
		return r
	}
	r := e.torch.run(bench, config, p)
	e.torchRuns[key] = r
	e.rep.TorchRuns = append(e.rep.TorchRuns, r)
	return r
}

// cachedTorchValue is a Result.torchValue that takes the PyTorch figure of
// another bench (running torch_ref.py for it if this run has not yet).
func (e *env) cachedTorchValue(bench, config, name string, p measureParams) func(*torchRun) (float64, torchRecord, error) {
	return func(*torchRun) (float64, torchRecord, error) {
		if e.torch.skipped != "" {
			return 0, nil, fmt.Errorf("skipped: %s", e.torch.skipped)
		}
		run := e.torchRun(bench, config, p)
		rec, err := run.find(name, config)
		if err != nil {
			return 0, nil, err
		}
		v, _ := rec.num("value")
		return v, rec, nil
	}
}

func main() {
	tensor.ReexecDefaultEnv() // rl's default set-up: the PyTorch processes inherit it, as under rl compare
	o := &options{}
	root := repoRoot()
	var only, config string
	flag.IntVar(&o.threads, "threads", runtime.NumCPU(), "libtorch intra-op threads, for rl and for PyTorch")
	flag.StringVar(&o.torchRef, "torch-ref", "../shared/bench/torch_ref.py", "torch_ref.py (relative paths are from the repository root)")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "the Python with Debian's python3-torch")
	flag.BoolVar(&o.noTorch, "no-torch", false, "measure rl only")
	flag.StringVar(&only, "only", "", "comma-separated benches: "+benchNames(false)+" (default: all but breakdown and memory_1b)")
	flag.StringVar(&config, "config", "all", "tiny, gpt2s, tinyllama (with --long), all, or one shape (tiny-512, gpt2s-1024, ...); a family includes its long shapes")
	flag.BoolVar(&o.quick, "quick", false, "tiny at seq 128 only, fewer runs and steps, shorter quiet waits (about 2 minutes)")
	flag.IntVar(&o.warmup, "warmup", 0, "warm-up steps (0: torch_ref.py's default for the bench)")
	flag.IntVar(&o.runs, "runs", 0, "timed runs, median reported (0: default, 5)")
	flag.IntVar(&o.steps, "steps", 0, "steps (or generate calls) per run (0: torch_ref.py's default)")
	flag.IntVar(&o.retries, "retries", -1, "re-runs of a run that other processes disturbed (-1: 2, quick 1)")
	flag.Float64Var(&o.quietWait, "quiet-wait", -1, "seconds to wait for a quiet machine before each run (-1: 30, quick 5)")
	flag.Float64Var(&o.quietThresh, "quiet-thresh", 0.15, "CPU cores other processes may use for a run to count as quiet")
	flag.IntVar(&o.ops, "ops", 1_000_000, "adds for the per-op overhead measurement")
	flag.IntVar(&o.memSteps, "mem-steps", 0, "training steps of the memory-growth run (0: 1000, quick 300)")
	flag.StringVar(&o.jsonPath, "json", "bench-results.json", "where to write every figure")
	flag.BoolVar(&o.interleave, "interleave", false, "alternate rl's timed runs with single-run torch_ref.py processes (fairer on a busy machine; each PyTorch run pays its own start and warm-up)")
	flag.StringVar(&o.malloc, "malloc", "tuned", "glibc malloc set-up for rl and PyTorch alike: tuned (what the rl binary sets at start-up: no mmap'd chunks, no trimming; see malloc.go) or default (glibc's own)")
	flag.BoolVar(&o.long, "long", false, "also the long shapes: GPT-2 small SFT at seq 512 and 1024, batch 8, and TinyLlama's shape in bf16 (minutes a step each side; TinyLlama needs ~22 GB free)")
	flag.StringVar(&o.memConfigs, "mem-configs", "", "memory_1b: comma-separated configurations to run (default all: "+memConfigNames()+")")
	markdown := flag.Bool("markdown", false, "print the README's benchmark section from --json (bench-results.json) and exit; measures nothing")
	flag.Parse()
	if *markdown {
		if err := writeMarkdown(os.Stdout, o.jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}

	if err := parseSelection(o, only, config); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.memSteps == 0 {
		o.memSteps = pick(o.quick, 300, 1000)
	}
	if o.retries < 0 {
		o.retries = pick(o.quick, 1, 2)
	}
	if o.quietWait < 0 {
		o.quietWait = float64(pick(o.quick, 5, 30))
	}
	if o.malloc != "default" && o.malloc != "tuned" {
		fmt.Fprintln(os.Stderr, "bench: --malloc: want default or tuned")
		os.Exit(2)
	}
	if !filepath.IsAbs(o.torchRef) {
		o.torchRef = filepath.Join(root, o.torchRef)
	}
	// tools/bench/torch_ref_ext.py (the long shapes) imports this torch_ref.py.
	os.Setenv("RL_TORCH_REF", o.torchRef)
	if err := run(o, root); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func pick[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func benchNames(all bool) string {
	var n []string
	for _, b := range benches {
		n = append(n, b.Name)
	}
	return strings.Join(n, ",")
}

func parseSelection(o *options, only, config string) error {
	o.only = map[string]bool{}
	if only == "" {
		for _, b := range benches {
			o.only[b.Name] = b.Default
		}
	} else {
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if !slices.ContainsFunc(benches, func(b benchDef) bool { return b.Name == n }) {
				return fmt.Errorf("--only: unknown bench %q (have %s)", n, benchNames(true))
			}
			o.only[n] = true
		}
	}
	o.configs = map[string]bool{}
	switch config {
	case "all":
		o.configs["tiny"] = true
		o.configs["gpt2s"] = !o.quick
		o.configs["tinyllama"] = !o.quick
	case "tiny", "gpt2s", "tinyllama":
		o.configs[config] = true
	default:
		if _, ok := shapes[config]; ok { // one shape: tiny-512
			o.configs[config] = true
			o.long = o.long || slices.ContainsFunc(benches, func(b benchDef) bool { return slices.Contains(b.LongConfigs, config) })
			break
		}
		return fmt.Errorf("--config %q: want tiny, gpt2s, tinyllama, all or one shape (%s)", config, shapeNames())
	}
	if o.quick && o.configs["gpt2s"] {
		fmt.Println("note: --quick with --config gpt2s runs gpt2s with the quick settings")
	}
	return nil
}

func shapeNames() string {
	var n []string
	for k := range shapes {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// family is the --config name a shape belongs to: tiny-512 is a tiny shape.
func family(config string) string {
	f, _, _ := strings.Cut(config, "-")
	return f
}

// repoRoot is the directory of go.mod above the working directory.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/rlsuite/rl") {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// params applies --quick and the overrides to a bench's defaults.
func (o *options) params(def measureParams, bench string) measureParams {
	p := def
	if o.quick {
		p.Runs, p.Warmup = 3, 1
		p.Steps = map[string]int{"sft": 3, "dpo": 2, "sample": 1, "breakdown": 3}[bench]
		if p.Steps == 0 {
			p.Steps = 2
		}
		if def.Steps < p.Steps {
			p.Steps = def.Steps
		}
	}
	if o.warmup > 0 {
		p.Warmup = o.warmup
	}
	if o.runs > 0 {
		p.Runs = o.runs
	}
	if o.steps > 0 {
		p.Steps = o.steps
	}
	p.Retries, p.QuietWait, p.QuietThresh = o.retries, o.quietWait, o.quietThresh
	return p
}

// ---------------------------------------------------------------- run

type report struct {
	Meta       map[string]any `json:"meta"`
	Results    []*Result      `json:"results"`
	TorchRuns  []*torchRun    `json:"pytorch_runs,omitempty"`
	Errors     []string       `json:"errors,omitempty"`
	TorchSkip  string         `json:"pytorch_skipped,omitempty"`
	Breakdowns []breakdown    `json:"breakdowns,omitempty"`
}

func run(o *options, root string) error {
	start := time.Now()
	tensor.SetNumThreads(o.threads)
	if o.malloc == "tuned" {
		if err := tuneMalloc(); err != nil {
			return err
		}
	}
	rep := &report{}
	e := &env{opts: o, root: root, torchRuns: map[string]*torchRun{}, rep: rep}
	e.torch = newTorchRunner(o.python, o.torchRef, tensor.NumThreads(), o.noTorch)
	e.torch.ext = filepath.Join(root, "tools", "bench", "torch_ref_ext.py")
	if e.torch.skipped != "" {
		fmt.Println("skipped PyTorch comparison:", e.torch.skipped)
	}
	rep.TorchSkip = e.torch.skipped
	mallocVars := map[string]string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MALLOC_") || strings.HasPrefix(kv, "GLIBC_TUNABLES=") || strings.HasPrefix(kv, "LD_PRELOAD=") {
			k, v, _ := strings.Cut(kv, "=")
			mallocVars[k] = v
		}
	}
	rep.Meta = map[string]any{
		"date": start.UTC().Format(time.RFC3339), "threads": tensor.NumThreads(), "num_cpu": runtime.NumCPU(),
		"blas": blasInUse(), "omp_wait_policy": os.Getenv("OMP_WAIT_POLICY"),
		"openblas_threads": os.Getenv("OPENBLAS_NUM_THREADS"), "go": runtime.Version(),
		"quick": o.quick, "git": gitDescribe(root), "torch_ref": o.torchRef,
		"malloc": o.malloc, "malloc_env": mallocVars, "interleave": o.interleave,
		"cpu": cpuModel(), "cpu_isa": cpuISA(), "gomp_spincount": os.Getenv("GOMP_SPINCOUNT"),
		"openblas_coretype": os.Getenv("OPENBLAS_CORETYPE"), "openblas_detected": os.Getenv(tensor.RLBLASDetected),
	}
	fmt.Printf("rl bench: %d libtorch threads (%d CPUs), BLAS %s, OMP_WAIT_POLICY=%q, GOMP_SPINCOUNT=%q, malloc %s\n",
		tensor.NumThreads(), runtime.NumCPU(), blasInUse(), os.Getenv("OMP_WAIT_POLICY"), os.Getenv("GOMP_SPINCOUNT"), o.malloc)
	if c, d := os.Getenv("OPENBLAS_CORETYPE"), os.Getenv(tensor.RLBLASDetected); d != "" {
		fmt.Printf("  (OPENBLAS_CORETYPE=%s from rl's default set-up, as OpenBLAS chose its %s kernels for this CPU: for rl and PyTorch alike)\n", c, d)
	} else if c != "" {
		fmt.Printf("  (OPENBLAS_CORETYPE=%s from the environment: OpenBLAS's float32 GEMMs use that CPU's kernels, for rl and PyTorch alike)\n", c)
	}
	if os.Getenv("OMP_WAIT_POLICY") == "" {
		fmt.Println("  (OMP_WAIT_POLICY unset, as rl runs by default with OpenBLAS-openmp; PyTorch inherits the same environment)")
	}

	for _, b := range benches {
		if !o.only[b.Name] {
			continue
		}
		configs := b.Configs
		if o.long {
			configs = append(slices.Clip(configs), b.LongConfigs...)
		}
		if configs == nil {
			configs = []string{""}
		}
		for _, config := range configs {
			if config != "" && (!o.configs[family(config)] && !o.configs[config] || o.quick && !o.long && strings.Contains(config, "-")) {
				continue
			}
			var p measureParams
			if b.Params != nil {
				p = o.params(b.Params(config), b.Name)
			}
			label := strings.TrimSpace(b.Name + " " + config)
			fmt.Printf("-- %s: rl", label)
			if b.Params != nil {
				fmt.Printf(" (warmup %d, %d runs x %d steps)", p.Warmup, p.Runs, p.Steps)
			}
			var single []*torchRun
			if o.interleave && b.Torch != "" && e.torch.skipped == "" {
				one := p
				one.Runs = 1
				p.AfterRun = func() {
					if len(single) < p.Runs {
						single = append(single, e.torch.run(b.Torch, config, one))
					}
				}
			}
			t0 := time.Now()
			res, err := b.RL(e, config, p)
			fmt.Printf(" %.0f s", time.Since(t0).Seconds())
			if err != nil {
				fmt.Printf("\n   rl error: %v\n", err)
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s: rl: %v", label, err))
			}
			var trun *torchRun
			if b.Torch != "" && e.torch.skipped == "" {
				fmt.Printf("; PyTorch")
				t0 = time.Now()
				if single != nil {
					for len(single) < p.Runs { // benches with fewer timed runs than p.Runs
						one := p
						one.Runs = 1
						single = append(single, e.torch.run(b.Torch, config, one))
					}
					trun = merge(single)
					fmt.Printf(" (%d interleaved processes, %.0f s in all)", len(single), trun.WallS)
					e.torchRuns[b.Torch+"/"+config] = trun
					e.rep.TorchRuns = append(e.rep.TorchRuns, single...)
				} else {
					trun = e.torchRun(b.Torch, config, p)
					fmt.Printf(" %.0f s", time.Since(t0).Seconds())
				}
				if trun.Error != "" {
					fmt.Printf("\n   PyTorch error: %s: %s\n", trun.Error, trun.Stderr)
					rep.Errors = append(rep.Errors, fmt.Sprintf("%s: torch_ref.py: %s: %s", label, trun.Error, trun.Stderr))
				}
			}
			fmt.Println()
			for _, r := range res {
				compare(r, b, trun, e.torch.skipped)
				rep.Results = append(rep.Results, r)
			}
		}
	}
	fillMFU(e, rep)
	rep.Meta["wall_s"] = round2(time.Since(start).Seconds())
	rep.Meta["pytorch"] = torchMeta(rep.TorchRuns)
	rep.Breakdowns = breakdowns

	fmt.Println()
	printTable(os.Stdout, rep)
	if len(breakdowns) > 0 {
		printBreakdowns(os.Stdout)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (%.0f s in all)\n", o.jsonPath, time.Since(start).Seconds())
	return nil
}

// compare fills in the PyTorch figure, the ratio and the verdict.
func compare(r *Result, b benchDef, trun *torchRun, skipped string) {
	if b.Torch != "" || r.torchValue != nil {
		switch {
		case skipped != "":
			r.TorchNote = "skipped: " + skipped
		default:
			find := r.torchValue
			if find == nil {
				find = func(run *torchRun) (float64, torchRecord, error) {
					rec, err := run.find(r.Name, r.Config)
					if err != nil {
						return 0, nil, err
					}
					v, ok := rec.num("value")
					if !ok {
						return 0, rec, fmt.Errorf("%s record has no value", r.Name)
					}
					if u := rec.str("unit"); u != r.Unit {
						return 0, rec, fmt.Errorf("%s: PyTorch unit %q, rl unit %q", r.Name, u, r.Unit)
					}
					return v, rec, nil
				}
			}
			v, rec, err := find(trun)
			r.TorchRecord = rec
			if err != nil {
				r.TorchNote = err.Error()
			} else {
				r.Torch = &v
				if v != 0 && r.Better != "" {
					ratio := round3(r.RL / v)
					r.Ratio = &ratio
				}
			}
		}
	}
	switch {
	case r.pass != nil:
		ok := r.pass(r.RL)
		r.Pass = &ok
	case r.Better == higher && r.Ratio != nil:
		ok := *r.Ratio >= max(r.minRatio, 1)
		r.Pass = &ok
	}
}

func torchMeta(runs []*torchRun) map[string]any {
	for _, run := range runs {
		for _, rec := range run.Records {
			if _, ok := rec["threads"]; ok {
				return map[string]any{"threads": rec["threads"], "blas": rec["blas"], "torch": rec["torch"],
					"omp_wait_policy": rec["omp_wait_policy"]}
			}
		}
	}
	return nil
}

func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ---------------------------------------------------------------- table

func printTable(f *os.File, rep *report) {
	if pm, ok := rep.Meta["pytorch"].(map[string]any); ok && pm != nil {
		fmt.Fprintf(f, "rl: %v threads, BLAS %v | PyTorch %v: %v threads, BLAS %v\n",
			rep.Meta["threads"], rep.Meta["blas"], pm["torch"], pm["threads"], pm["blas"])
	} else {
		fmt.Fprintf(f, "rl: %v threads, BLAS %v\n", rep.Meta["threads"], rep.Meta["blas"])
	}
	rows := [][]string{{"measurement", "config", "rl", "PyTorch", "ratio rl/PyTorch", "MFU rl / PyTorch", "target"}}
	for _, r := range rep.Results {
		torch := "-"
		if r.Torch != nil {
			torch = num(*r.Torch)
			if d, ok := r.TorchRecord.num("disturbed_runs"); ok && d > 0 {
				torch = fmt.Sprintf("(%.0f disturbed) %s", d, torch)
			}
		} else if r.TorchNote != "" {
			torch = "n/a"
		}
		ratio := "-"
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		target := r.Target
		if r.Pass != nil {
			target += pick(*r.Pass, " ok", " MISS")
		}
		rl := num(r.RL)
		if r.RLStats != nil && r.RLStats.DisturbedRuns > 0 {
			rl = fmt.Sprintf("(%d disturbed) %s", r.RLStats.DisturbedRuns, rl)
		}
		rows = append(rows, []string{fmt.Sprintf("%s (%s)", r.Name, r.Unit), r.Config, rl, torch, ratio, mfuCell(r), target})
	}
	printRows(f, rows, []bool{false, false, true, true, true, true, false})
	if disturbed(rep) {
		fmt.Fprintln(f, "  (n disturbed): runs during which other processes used more than --quiet-thresh cores even after the retries; such ratios are unreliable")
	}
	var notes []string
	for _, r := range rep.Results {
		if r.TorchNote != "" && !strings.HasPrefix(r.TorchNote, "skipped") {
			notes = append(notes, fmt.Sprintf("%s/%s: %s", r.Name, r.Config, r.TorchNote))
		}
	}
	sort.Strings(notes)
	for _, n := range notes {
		fmt.Fprintln(f, "  PyTorch n/a:", n)
	}
	if rep.TorchSkip != "" {
		fmt.Fprintln(f, "  skipped PyTorch comparison:", rep.TorchSkip)
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(f, "  error:", e)
	}
}

func disturbed(rep *report) bool {
	for _, r := range rep.Results {
		if r.RLStats != nil && r.RLStats.DisturbedRuns > 0 {
			return true
		}
		if d, ok := r.TorchRecord.num("disturbed_runs"); ok && d > 0 {
			return true
		}
	}
	return false
}

// printRows prints a Markdown table, right-aligning the columns marked so.
func printRows(f io.Writer, rows [][]string, right []bool) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for n, r := range rows {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if right[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		fmt.Fprintln(f, b.String())
		if n == 0 {
			b.Reset()
			b.WriteString("|")
			for i := range r {
				d := strings.Repeat("-", width[i]+1)
				if right[i] {
					b.WriteString(d + ":|")
				} else {
					b.WriteString(" " + d + "|")
				}
			}
			fmt.Fprintln(f, b.String())
		}
	}
}

// num formats with thousands separators and sensible precision.
func num(v float64) string {
	switch a := abs(v); {
	case a >= 1000:
		s := fmt.Sprintf("%.0f", v)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var out []byte
		for i := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, s[i])
		}
		return pick(neg, "-", "") + string(out)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
