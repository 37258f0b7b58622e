// Command gpucheck is `go tool task gpu-check`: the proof of issue #15 on
// a machine with an NVIDIA GPU and PyTorch (pip torch with CUDA) installed.
//
//  1. It finds the CUDA libtorch of the machine's PyTorch (LIBTORCH, else
//     the folder of python3's torch package) and builds rl against it into
//     build/cuda/ (a copy of the source tree with its own patched gotch and
//     go.work: the CPU build in third_party/ and bin/ is not touched).
//  2. It runs the same few steps of every trainer (sft, reward, dpo, orpo,
//     kto, cpo, ppo, grpo, rloo, classify) on tiny fixtures on cuda and on
//     cpu with that one binary, and compares their logged losses: float32
//     within 1e-4 relative, bf16 (sft, dpo under --bf16) within 3e-2
//     relative (see tolerance below for why).
//  3. It checks greedy KV-cache generation on cuda against cpu (the same
//     tokens; a divergence only where the two best tokens are a near tie),
//     that a checkpoint written from CUDA tensors loads and generates on the
//     CPU, and that a run resumed on cuda from its checkpoint ends with the
//     uninterrupted run's weights exactly.
//  4. It opens a 1-process NCCL group (all-reduce, broadcast, all-gather,
//     barrier of known tensors); with 2 or more GPUs it also runs
//     `rl launch --nproc-per-node 2 --device cuda` SFT and GRPO against one
//     process with the doubled batch.
//  5. It prints SFT training throughput (tokens/s) for the tiny and gpt2s
//     shapes of tools/bench on cuda, float32 and bf16.
//
// Without a CUDA device it stops at once with one line, "no CUDA device:
// ...", and exit status 2. Any failed check makes the exit status 1.
//
//	go tool task gpu-check
//	go tool task gpu-check -- --skip-build --only sft,dpo
//
// Testing gpu-check itself without a GPU: --as-cuda cpu runs every check
// with the CPU in cuda's place (binaries from --rl and --probe), and
// --build-only --libtorch system builds the separate tree against
// Debian's libtorch.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/safetensors"
)

// Tolerances of the cuda-vs-cpu loss comparison (relative to max(1, |cpu
// loss|)).
//
// float32: CUDA kernels (cuBLAS GEMMs, reductions, softmax) sum in other
// orders and block sizes than the CPU's, so each float32 op differs by a
// few ulps (2^-24 ~ 6e-8 relative) that grow through a 4-layer forward,
// backward and up to 3 AdamW steps: 1e-6 to 1e-5 on these losses. rl
// leaves TF32 off (PyTorch's default for matmuls since 1.12), so 1e-4 is
// 10x above that and far below what a real device bug does (a mask or
// label on the wrong rows moves a loss by 1e-2 or more).
//
// bf16 (autocast, float32 master weights): bfloat16 keeps 8 significant
// bits (2^-8 ~ 4e-3 relative per rounding), and CPU and CUDA autocast
// round at different places (which ops each casts, fused vs unfused
// kernels, accumulation in float32 inside cuBLAS vs oneDNN), so losses
// agree to a few bf16 ulps of the loss: 3e-2 relative.
const (
	tolFloat32 = 1e-4
	tolBF16    = 3e-2
	// tieGap: generation may take another token where the CPU's two best
	// log-probabilities are this close (float32 rounding picks either).
	tieGap = 1e-3
)

type result struct {
	Name, Status, Detail string // Status: PASS, FAIL, SKIP, INFO
}

type checker struct {
	root, build, work, rl, probe string
	// dev is the device under test, "cuda"; --as-cuda cpu makes it the CPU
	// (gpu-check's own test on a machine without a GPU: both sides equal)
	dev     string
	steps   int
	only    map[string]bool
	results []result
	log     io.Writer
}

func main() {
	root := flag.String("root", ".", "the rl repository")
	buildDir := flag.String("build-dir", "build/cuda", "where the CUDA build goes (git-ignored; bin/ and third_party/ are left alone)")
	python := flag.String("python", "python3", "the Python whose torch package is the libtorch (unless LIBTORCH is set)")
	skipBuild := flag.Bool("skip-build", false, "use the binaries already in --build-dir")
	only := flag.String("only", "", "comma-separated checks to run (trainers by name, generate, resume, nccl, launch, throughput); all when empty")
	steps := flag.Int("steps", 3, "optimizer steps per trainer run")
	asCUDA := flag.String("as-cuda", "", "testing gpu-check itself without a GPU: run every check with this device (cpu) in cuda's place, with the binaries --rl and --probe, building nothing")
	rlBin := flag.String("rl", "", "with --skip-build or --as-cuda: the rl binary (default: BUILD-DIR/rl)")
	probeBin := flag.String("probe", "", "with --skip-build or --as-cuda: the probe binary (default: BUILD-DIR/gpucheck-probe)")
	libtorchFlag := flag.String("libtorch", "", "the libtorch to build against instead of python's torch (default: LIBTORCH); \"system\" is tools/setup's default (Debian's CPU libtorch: tests the build itself)")
	buildOnly := flag.Bool("build-only", false, "build into --build-dir and stop")
	flag.Parse()

	if reason := noCUDA(); reason != "" && *asCUDA == "" && !*buildOnly {
		fmt.Println("no CUDA device: " + reason)
		os.Exit(2)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	c := &checker{root: abs(*root), build: abs(*buildDir), steps: *steps, only: map[string]bool{}, log: os.Stdout, dev: "cuda"}
	if *asCUDA != "" {
		c.dev, *skipBuild = *asCUDA, true
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.only[s] = true
		}
	}
	c.rl, c.probe = filepath.Join(c.build, "rl"), filepath.Join(c.build, "gpucheck-probe")
	if *rlBin != "" {
		c.rl = abs(*rlBin)
	}
	if *probeBin != "" {
		c.probe = abs(*probeBin)
	}
	if !*skipBuild {
		libtorch := *libtorchFlag
		if libtorch == "" {
			var err error
			if libtorch, err = findLibtorch(*python); err != nil {
				fmt.Println("no CUDA device: " + err.Error())
				os.Exit(2)
			}
		}
		if err := c.buildCUDA(libtorch); err != nil {
			fmt.Fprintln(os.Stderr, "gpu-check: build:", err)
			os.Exit(1)
		}
	}
	if *buildOnly {
		fmt.Printf("gpu-check: built %s and %s\n", c.rl, c.probe)
		return
	}
	c.work = filepath.Join(c.build, "run")
	_ = os.RemoveAll(c.work)
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gpu-check:", err)
		os.Exit(1)
	}
	if out, err := exec.Command(c.rl, "info").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "gpu-check: %s info: %v\n%s", c.rl, err, out)
		os.Exit(1)
	} else {
		fmt.Printf("---- rl info (the CUDA build)\n%s", out)
		if c.dev == "cuda" && !bytes.Contains(out, []byte("CUDA available to libtorch: true")) {
			fmt.Println("no CUDA device: the CUDA build of rl sees none (rl info above)")
			os.Exit(2)
		}
	}
	if err := c.run(); err != nil {
		fmt.Fprintln(os.Stderr, "gpu-check:", err)
		os.Exit(1)
	}
	failed := 0
	fmt.Println("---- summary")
	for _, r := range c.results {
		fmt.Printf("%-5s %-28s %s\n", r.Status, r.Name, r.Detail)
		if r.Status == "FAIL" {
			failed++
		}
	}
	if failed > 0 {
		fmt.Printf("gpu-check: %d of %d checks failed (logs under %s)\n", failed, len(c.results), c.work)
		os.Exit(1)
	}
	fmt.Printf("gpu-check: all %d checks passed\n", len(c.results))
}

// noCUDA says why this machine has no CUDA device for the check, "" when
// it has one: the NVIDIA driver lists its GPUs under /proc/driver/nvidia.
func noCUDA() string {
	ents, err := os.ReadDir("/proc/driver/nvidia/gpus")
	if err != nil || len(ents) == 0 {
		if _, err := os.Stat("/dev/nvidia0"); err == nil {
			return ""
		}
		return "no NVIDIA GPU or driver on this machine (/proc/driver/nvidia/gpus lists none); run gpu-check on a machine with an NVIDIA GPU and PyTorch with CUDA"
	}
	return ""
}

// findLibtorch is LIBTORCH, else the folder of python's torch package,
// which must be a CUDA build that sees a device.
func findLibtorch(python string) (string, error) {
	if d := os.Getenv("LIBTORCH"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "lib", "libtorch_cuda.so")); err != nil {
			return "", fmt.Errorf("LIBTORCH=%s has no lib/libtorch_cuda.so: not a CUDA libtorch", d)
		}
		return d, nil
	}
	script := `import json, os, torch; print(json.dumps({"dir": os.path.dirname(torch.__file__), "version": torch.__version__, "cuda": torch.version.cuda, "available": torch.cuda.is_available()}))`
	out, err := exec.Command(python, "-c", script).Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			lines := strings.Split(strings.TrimSpace(string(ee.Stderr)), "\n")
			msg = lines[len(lines)-1]
		}
		return "", fmt.Errorf("%s cannot import torch (%s): install PyTorch with CUDA (pip install torch) or set LIBTORCH to a CUDA libtorch", python, msg)
	}
	var t struct {
		Dir, Version string
		CUDA         *string
		Available    bool
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &t); err != nil {
		return "", fmt.Errorf("%s: torch's answer %q: %v", python, out, err)
	}
	switch {
	case t.CUDA == nil:
		return "", fmt.Errorf("torch %s at %s is a CPU-only build (torch.version.cuda is None): install a CUDA build of PyTorch", t.Version, t.Dir)
	case !t.Available:
		return "", fmt.Errorf("torch %s (CUDA %s) at %s: torch.cuda.is_available() is False (driver too old for CUDA %s, or CUDA_VISIBLE_DEVICES hides the GPUs)", t.Version, *t.CUDA, t.Dir, *t.CUDA)
	}
	fmt.Printf("gpu-check: torch %s (CUDA %s) at %s\n", t.Version, *t.CUDA, t.Dir)
	return t.Dir, nil
}

// buildCUDA copies the source tree (tracked and untracked, not ignored
// files) to build/cuda/src, runs tools/setup there with LIBTORCH, and
// builds rl and the probe into build/cuda.
func (c *checker) buildCUDA(libtorch string) error {
	src := filepath.Join(c.build, "src")
	files, err := exec.Command("git", "-C", c.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files in %s: %w", c.root, err)
	}
	n := 0
	for _, f := range strings.Split(string(files), "\x00") {
		if f == "" || strings.HasPrefix(f, "build/") {
			continue
		}
		if err := copyIfChanged(filepath.Join(c.root, f), filepath.Join(src, f)); err != nil {
			return err
		}
		n++
	}
	fmt.Printf("gpu-check: %d source files in %s\n", n, src)
	env := append(os.Environ(), "LIBTORCH="+libtorch)
	if libtorch == "system" {
		env = append(os.Environ(), "LIBTORCH=")
	}
	steps := [][]string{
		{"go", "run", "./tools/setup"},
		{"go", "build", "-o", c.rl, "./cmd/rl"},
		{"go", "build", "-o", c.probe, "./tools/gpucheck/probe"},
	}
	for i, s := range steps {
		began := time.Now()
		fmt.Printf("gpu-check: %s\n", strings.Join(s, " "))
		cmd := exec.Command(s[0], s[1:]...)
		// src sits inside the checkout: without an explicit GOWORK the go
		// command would find the checkout's go.work (the CPU gotch) above
		// it. setup runs on go.mod alone and writes src's own go.work.
		work := "GOWORK=" + filepath.Join(src, "go.work")
		if i == 0 {
			work = "GOWORK=off"
		}
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = src, append(env, work), os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s (in %s): %w", strings.Join(s, " "), src, err)
		}
		fmt.Printf("gpu-check:   done (%s)\n", time.Since(began).Round(time.Second))
	}
	return nil
}

func copyIfChanged(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted in the work tree, not yet in git
		}
		return err
	}
	if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	st, _ := os.Stat(from)
	return os.WriteFile(to, b, st.Mode().Perm())
}

func (c *checker) want(name string) bool { return len(c.only) == 0 || c.only[name] }

func (c *checker) add(name, status, format string, a ...any) {
	r := result{Name: name, Status: status, Detail: fmt.Sprintf(format, a...)}
	c.results = append(c.results, r)
	fmt.Printf("%-5s %-28s %s\n", r.Status, r.Name, r.Detail)
}

// rlRun runs the CUDA build's rl with args, its output in log (under work).
func (c *checker) rlRun(log string, args ...string) error {
	f, err := os.Create(filepath.Join(c.work, log))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(c.rl, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = c.work, f, f
	cmd.Env = append(os.Environ(), "RL_LOG_CONSOLE=")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rl %s: %v (log: %s: %s)", strings.Join(args, " "), err, f.Name(), lastLine(f.Name()))
	}
	return nil
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

func (c *checker) run() error {
	if err := c.fixtures(); err != nil {
		return fmt.Errorf("fixtures: %w", err)
	}
	for _, tr := range trainers(c) {
		if c.want(tr.name) {
			c.compareTrainer(tr)
		}
	}
	if c.want("generate") {
		c.checkGenerate()
	}
	if c.want("resume") {
		c.checkResume()
	}
	if c.want("nccl") {
		c.probeCheck("nccl", "nccl")
	}
	if c.want("launch") {
		c.checkLaunch()
	}
	if c.want("throughput") {
		c.probeCheck("throughput", "throughput")
	}
	return nil
}

// ---------------------------------------------------------------- fixtures

var words = strings.Fields("the quick brown fox jumps over the lazy dog a b and c one two three four five six seven eight nine ten red green blue cat sat on mat")

// fixtures writes a tokenizer, a tiny GPT-2 (the "tiny" preset, no
// dropout: cpu and cuda draw different dropout masks) and the datasets.
func (c *checker) fixtures() error {
	var corpus strings.Builder
	for i := 0; i < 200; i++ {
		for j := 0; j < 12; j++ {
			corpus.WriteString(words[(i*7+j*3)%len(words)] + " ")
		}
		corpus.WriteString("\n")
	}
	w := func(name, content string) error {
		return os.WriteFile(filepath.Join(c.work, name), []byte(content), 0o644)
	}
	if err := w("corpus.txt", corpus.String()); err != nil {
		return err
	}
	if err := c.rlRun("tokenizer.log", "tokenizer", "train", "-o", "tok", "--vocab-size", "400", "corpus.txt"); err != nil {
		return err
	}
	if err := c.rlRun("init.log", "init", "--preset", "tiny", "--tokenizer", "tok", "-o", "lm", "--seed", "1"); err != nil {
		return err
	}
	phrase := func(i, n int) string {
		var p []string
		for j := 0; j < n; j++ {
			p = append(p, words[(i*5+j*2)%len(words)])
		}
		return strings.Join(p, " ")
	}
	var sft, pref, kto, cls, prompts strings.Builder
	row := func(b *strings.Builder, m map[string]any) {
		j, _ := json.Marshal(m)
		b.Write(append(j, '\n'))
	}
	for i := 0; i < 32; i++ {
		p := phrase(i, 2+i%3)
		row(&sft, map[string]any{"prompt": p, "completion": " " + phrase(i+1, 1+i%5)})
		row(&pref, map[string]any{"prompt": p, "chosen": " " + phrase(i+2, 2+i%4), "rejected": " " + phrase(i+3, 1+i%3)})
		row(&kto, map[string]any{"prompt": p, "completion": " " + phrase(i+4, 1+i%4), "label": i%3 != 0})
		row(&cls, map[string]any{"text": phrase(i, 3+i%5), "label": i % 2})
		row(&prompts, map[string]any{"prompt": p})
	}
	for name, b := range map[string]*strings.Builder{"sft.jsonl": &sft, "pref.jsonl": &pref, "kto.jsonl": &kto, "cls.jsonl": &cls, "prompts.jsonl": &prompts} {
		if err := w(name, b.String()); err != nil {
			return err
		}
	}
	// PPO's reward (and value) model: a reward run on the CPU, the same
	// starting point for both devices
	return c.rlRun("rm.log", "--device", "cpu", "reward", "--model", "lm", "--dataset", "pref.jsonl", "--output-dir", "rm",
		"--max-steps", "2", "--per-device-train-batch-size", "4", "--save-strategy", "no")
}

// ---------------------------------------------------------------- trainers

type trainer struct {
	name string
	args []string
	keys []string // logged metrics compared
	bf16 bool     // also compared under --bf16
}

func trainers(c *checker) []trainer {
	common := []string{"--per-device-train-batch-size", "4", "--learning-rate", "1e-4"}
	online := []string{"--dataset", "prompts.jsonl", "--num-generations", "2", "--max-completion-length", "6",
		"--per-device-train-batch-size", "4", "--learning-rate", "1e-5", "--reward-funcs", "builtin:length,rm"}
	return []trainer{
		{"sft", append([]string{"--model", "lm", "--dataset", "sft.jsonl"}, common...), []string{"loss", "grad_norm"}, true},
		{"reward", append([]string{"--model", "lm", "--dataset", "pref.jsonl"}, common...), []string{"loss", "grad_norm"}, false},
		{"dpo", append([]string{"--model", "lm", "--dataset", "pref.jsonl"}, common...), []string{"loss", "grad_norm", "rewards/margins"}, true},
		{"orpo", append([]string{"--model", "lm", "--dataset", "pref.jsonl"}, common...), []string{"loss", "grad_norm"}, false},
		{"cpo", append([]string{"--model", "lm", "--dataset", "pref.jsonl"}, common...), []string{"loss", "grad_norm"}, false},
		{"kto", append([]string{"--model", "lm", "--dataset", "kto.jsonl"}, common...), []string{"loss", "grad_norm"}, false},
		{"classify", append([]string{"--model", "lm", "--dataset", "cls.jsonl"}, common...), []string{"loss", "grad_norm"}, false},
		{"ppo", []string{"--model", "lm", "--reward", "rm", "--dataset", "prompts.jsonl", "--per-device-train-batch-size", "4",
			"--response-length", "6", "--num-ppo-epochs", "1", "--learning-rate", "1e-5"}, []string{"loss/policy_avg", "loss/value_avg", "objective/scores"}, false},
		{"grpo", append([]string{"--model", "lm"}, online...), []string{"loss", "reward"}, false},
		{"rloo", append([]string{"--model", "lm"}, online...), []string{"loss", "reward"}, false},
	}
}

// compareTrainer runs tr's steps on cpu and cuda (and with --bf16) and
// compares every logged step's metrics.
func (c *checker) compareTrainer(tr trainer) {
	modes := []bool{false}
	if tr.bf16 {
		modes = append(modes, true)
	}
	for _, bf := range modes {
		name, tol := tr.name, tolFloat32
		if bf {
			name, tol = tr.name+" --bf16", tolBF16
		}
		got := map[string]map[int]map[string]float64{}
		var errs []string
		for i, dev := range []string{"cpu", c.dev} {
			out := fmt.Sprintf("%s-%s", tr.name, []string{"cpu", "cuda"}[i])
			if bf {
				out += "-bf16"
			}
			args := append([]string{"--device", dev, tr.name}, tr.args...)
			args = append(args, "--output-dir", out, "--max-steps", fmt.Sprint(c.steps), "--logging-steps", "1",
				"--seed", "7", "--save-strategy", "no")
			if bf {
				args = append(args, "--bf16")
			}
			if err := c.rlRun(out+".log", args...); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			m, err := readMetrics(filepath.Join(c.work, out, "metrics.jsonl"))
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			got[[]string{"cpu", "cuda"}[i]] = m
		}
		if len(errs) > 0 {
			c.add(name, "FAIL", "%s", strings.Join(errs, "; "))
			continue
		}
		worst, detail, err := compareMetrics(got["cpu"], got["cuda"], tr.keys)
		switch {
		case err != nil:
			c.add(name, "FAIL", "%v", err)
		case worst > tol:
			c.add(name, "FAIL", "cuda vs cpu: %s differs by %.2g relative (tolerance %.0g)", detail, worst, tol)
		default:
			c.add(name, "PASS", "%d logged steps, cuda = cpu within %.2g relative (tolerance %.0g; %s)", len(got["cpu"]), worst, tol, detail)
		}
	}
}

// readMetrics reads metrics.jsonl (shared/metrics' reader) by step:
// step -> name -> value, the rows of one step merged.
func readMetrics(path string) (map[int]map[string]float64, error) {
	entries, err := metrics.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int]map[string]float64{}
	for _, e := range entries {
		if out[e.Step] == nil {
			out[e.Step] = map[string]float64{}
		}
		for k, v := range e.Values {
			out[e.Step][k] = v
		}
	}
	return out, nil
}

// compareMetrics returns the largest relative difference |cuda-cpu| /
// max(1, |cpu|) over keys and the steps both logged, and where it is.
func compareMetrics(cpu, cuda map[int]map[string]float64, keys []string) (float64, string, error) {
	worst, where, n := 0.0, "", 0
	var steps []int
	for s := range cpu {
		steps = append(steps, s)
	}
	sort.Ints(steps)
	for _, s := range steps {
		for _, k := range keys {
			a, ok := cpu[s][k]
			if !ok {
				continue
			}
			b, ok := cuda[s][k]
			if !ok {
				return 0, "", fmt.Errorf("step %d: cpu logged %s, cuda did not", s, k)
			}
			n++
			d := math.Abs(a-b) / math.Max(1, math.Abs(a))
			if math.IsNaN(b) || math.IsInf(b, 0) {
				d = math.Inf(1)
			}
			if d >= worst {
				worst, where = d, fmt.Sprintf("worst %s at step %d: cpu %.6g cuda %.6g", k, s, a, b)
			}
		}
	}
	if n == 0 {
		return 0, "", fmt.Errorf("no step logged any of %s", strings.Join(keys, ", "))
	}
	return worst, where, nil
}

// ---------------------------------------------------------------- generation

type genToken struct {
	ID      int64   `json:"id"`
	Logprob float64 `json:"logprob"`
	Top     []struct {
		ID      int64   `json:"id"`
		Logprob float64 `json:"logprob"`
	} `json:"top_logprobs"`
}

// checkGenerate decodes greedily with the KV cache from an SFT model
// trained on cuda (20 steps at a high learning rate: peaked enough that
// near ties are rare), on cuda and on cpu (which also proves that a
// checkpoint written from CUDA tensors loads on the CPU).
func (c *checker) checkGenerate() {
	model := "gen-sft"
	if err := c.rlRun("gen-sft.log", "--device", c.dev, "sft", "--model", "lm", "--dataset", "sft.jsonl", "--output-dir", model,
		"--max-steps", "20", "--learning-rate", "1e-3", "--save-strategy", "no"); err != nil {
		c.add("generate (kv cache)", "FAIL", "%v", err)
		return
	}
	// the trained model (written from CUDA tensors) ends its rows early
	// with eos; the initial one generates every token of each row
	rows := map[string][][]genToken{}
	for _, mdl := range []string{model, "lm"} {
		for i, dev := range []string{"cpu", c.dev} {
			if err := c.generate(mdl, dev, []string{"cpu", "cuda"}[i], rows); err != nil {
				c.add("generate (kv cache)", "FAIL", "%v", err)
				return
			}
		}
	}
	same, ties, worst, err := compareGenerations(rows["cpu"], rows["cuda"])
	switch {
	case err != nil:
		c.add("generate (kv cache)", "FAIL", "%v", err)
	case worst > tolFloat32*10:
		c.add("generate (kv cache)", "FAIL", "the same %d tokens, but log-probs differ by %.2g", same, worst)
	default:
		c.add("generate (kv cache)", "PASS", "greedy, KV cache: %d tokens equal on cuda and cpu (%d rows cut at a near tie), log-probs within %.2g; a checkpoint written from CUDA tensors generated on the CPU", same, ties, worst)
	}
}

// generate runs greedy rl generate of 6 prompts on dev and appends each
// row's tokens to rows[side].
func (c *checker) generate(mdl, dev, side string, rows map[string][][]genToken) error {
	args := []string{"--device", dev, "generate", "--model", mdl, "--max-new-tokens", "24", "--logprobs", "2"}
	for i := 0; i < 6; i++ {
		args = append(args, "-p", words[i*3]+" "+words[i*3+1])
	}
	log := "generate-" + mdl + "-" + side + ".jsonl"
	if err := c.rlRun(log, args...); err != nil {
		return err
	}
	b, _ := os.ReadFile(filepath.Join(c.work, log))
	for _, line := range strings.Split(string(b), "\n") {
		var r struct {
			Logprobs []genToken `json:"logprobs"`
		}
		if strings.HasPrefix(line, "{\"completion\"") && json.Unmarshal([]byte(line), &r) == nil {
			rows[side] = append(rows[side], r.Logprobs)
		}
	}
	return nil
}

// compareGenerations compares greedy tokens row by row; a row may part
// only where the CPU's two best log-probabilities are within tieGap (the
// rest of that row is then not compared).
func compareGenerations(cpu, cuda [][]genToken) (same, ties int, worst float64, err error) {
	if len(cpu) == 0 || len(cpu) != len(cuda) {
		return 0, 0, 0, fmt.Errorf("cpu generated %d rows, cuda %d", len(cpu), len(cuda))
	}
	for r := range cpu {
		for i := 0; i < len(cpu[r]) && i < len(cuda[r]); i++ {
			a, b := cpu[r][i], cuda[r][i]
			if a.ID != b.ID {
				if len(a.Top) >= 2 && a.Top[0].Logprob-a.Top[1].Logprob < tieGap {
					ties++
					break
				}
				return same, ties, worst, fmt.Errorf("row %d token %d: cpu chose %d (log-prob %.6g), cuda %d (%.6g): not a near tie", r, i, a.ID, a.Logprob, b.ID, b.Logprob)
			}
			same++
			worst = math.Max(worst, math.Abs(a.Logprob-b.Logprob))
		}
	}
	return same, ties, worst, nil
}

// ---------------------------------------------------------------- resume

// checkResume trains SFT for 4 steps on cuda with a checkpoint at 2, then
// resumes from it on cuda: the final weights must equal the uninterrupted
// run's exactly (the same kernels in the same order).
func (c *checker) checkResume() {
	base := []string{"--device", c.dev, "sft", "--model", "lm", "--dataset", "sft.jsonl", "--max-steps", "4",
		"--per-device-train-batch-size", "4", "--learning-rate", "1e-4", "--seed", "7", "--save-steps", "2", "--logging-steps", "1"}
	if err := c.rlRun("resume-full.log", append(base, "--output-dir", "resume-full")...); err != nil {
		c.add("resume on cuda", "FAIL", "%v", err)
		return
	}
	if err := c.rlRun("resume-part.log", append(base, "--output-dir", "resume-part",
		"--resume-from-checkpoint", filepath.Join(c.work, "resume-full", "checkpoint-2"))...); err != nil {
		c.add("resume on cuda", "FAIL", "%v", err)
		return
	}
	d, err := maxWeightDiff(filepath.Join(c.work, "resume-full"), filepath.Join(c.work, "resume-part"))
	switch {
	case err != nil:
		c.add("resume on cuda", "FAIL", "%v", err)
	case d != 0:
		c.add("resume on cuda", "FAIL", "resumed from checkpoint-2, the final weights differ by %.3g (want exactly equal)", d)
	default:
		c.add("resume on cuda", "PASS", "4 steps = 2 steps, checkpoint, resume, 2 steps: final weights identical")
	}
}

// maxWeightDiff is the largest elementwise difference between two
// folders' model.safetensors.
func maxWeightDiff(a, b string) (float64, error) {
	fa, err := safetensors.ReadFile(filepath.Join(a, "model.safetensors"))
	if err != nil {
		return 0, err
	}
	fb, err := safetensors.ReadFile(filepath.Join(b, "model.safetensors"))
	if err != nil {
		return 0, err
	}
	var worst float64
	for _, name := range fa.Names() {
		tb, ok := fb.Tensors[name]
		if !ok {
			return 0, fmt.Errorf("%s lacks %s", b, name)
		}
		x, err1 := fa.Tensors[name].Float32s()
		y, err2 := tb.Float32s()
		if err1 != nil || err2 != nil || len(x) != len(y) {
			return 0, fmt.Errorf("%s: %v %v (%d vs %d values)", name, err1, err2, len(x), len(y))
		}
		for i := range x {
			worst = math.Max(worst, math.Abs(float64(x[i])-float64(y[i])))
		}
	}
	return worst, nil
}

// ---------------------------------------------------------------- data parallel

// checkLaunch (2 or more GPUs): rl launch --nproc-per-node 2 on cuda
// (NCCL) with per-device batch 2 against one process with batch 4, for
// SFT (gradients all-reduced) and GRPO (rollouts sharded and gathered).
func (c *checker) checkLaunch() {
	out, err := exec.Command(c.probe, "gpus", c.dev).Output()
	n := 0
	fmt.Sscan(string(out), &n)
	if c.dev == "cpu" {
		n, err = 2, nil // --as-cuda cpu: two gloo ranks test the check itself
	}
	if err != nil || n < 2 {
		c.add("launch 2 ranks (NCCL)", "SKIP", "%d GPU(s): NCCL refuses two ranks on one GPU; the 1-process group above is the check here", n)
		return
	}
	for _, tr := range []struct {
		name string
		args []string
		keys []string
	}{
		{"sft", []string{"--dataset", "sft.jsonl", "--learning-rate", "1e-4"}, []string{"loss", "grad_norm"}},
		{"grpo", []string{"--dataset", "prompts.jsonl", "--num-generations", "2", "--max-completion-length", "6",
			"--learning-rate", "1e-5", "--reward-funcs", "builtin:length,rm"}, []string{"loss", "reward"}},
	} {
		name := "launch 2 ranks (NCCL) " + tr.name
		common := append([]string{tr.name, "--model", "lm", "--max-steps", fmt.Sprint(c.steps), "--logging-steps", "1",
			"--seed", "7", "--save-strategy", "no"}, tr.args...)
		one, two := "launch-one-"+tr.name, "launch-two-"+tr.name
		if err := c.rlRun(one+".log", append(append([]string{"--device", c.dev}, common...), "--per-device-train-batch-size", "4", "--output-dir", one)...); err != nil {
			c.add(name, "FAIL", "%v", err)
			continue
		}
		args := append([]string{"launch", "--nproc-per-node", "2", c.rl, "--device", c.dev}, common...)
		if err := c.rlRun(two+".log", append(args, "--per-device-train-batch-size", "2", "--output-dir", two)...); err != nil {
			c.add(name, "FAIL", "%v", err)
			continue
		}
		m1, err1 := readMetrics(filepath.Join(c.work, one, "metrics.jsonl"))
		m2, err2 := readMetrics(filepath.Join(c.work, two, "metrics.jsonl"))
		if err := errors.Join(err1, err2); err != nil {
			c.add(name, "FAIL", "%v", err)
			continue
		}
		worst, detail, err := compareMetrics(m1, m2, tr.keys)
		detail = strings.NewReplacer("cpu ", "1 process ", "cuda ", "2 ranks ").Replace(detail)
		switch {
		case err != nil:
			c.add(name, "FAIL", "%v", err)
		case worst > tolFloat32:
			c.add(name, "FAIL", "2 ranks x batch 2 vs 1 x 4: %s differs by %.2g relative", detail, worst)
		default:
			c.add(name, "PASS", "2 ranks x batch 2 = 1 process x batch 4 within %.2g (%s)", worst, detail)
		}
	}
}

// probeCheck runs the probe (tools/gpucheck/probe, built against the
// CUDA libtorch) and records its lines: "PASS|FAIL|INFO name: detail".
func (c *checker) probeCheck(name, what string) {
	cmd := exec.Command(c.probe, what, c.dev)
	cmd.Dir = c.work
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(c.work, "probe-"+what+".log"), out, 0o644)
	any := false
	for _, line := range strings.Split(string(out), "\n") {
		st, rest, ok := strings.Cut(line, " ")
		if !ok || (st != "PASS" && st != "FAIL" && st != "INFO") {
			continue
		}
		n, detail, _ := strings.Cut(rest, ": ")
		c.add(n, st, "%s", detail)
		any = true
	}
	if err != nil || !any {
		c.add(name, "FAIL", "probe %s: %v: %s", what, err, lastLine(filepath.Join(c.work, "probe-"+what+".log")))
	}
}
