package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv("RL_TEST_AS_RL") == "1" {
		// a worker of rl launch (launch_test.go): this binary is rl
		if os.Getenv("RL_TEST_MAIN") == "1" { // and starts as main does
			tensor.ReexecDefaultEnv()
		}
		os.Exit(runAsWorker())
	}
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// tinyModel returns the directory of a randomly initialised 1-layer GPT-2
// with an LM head (lm/) and with a one-label score head (rm/), both with a
// small BPE tokenizer; the caller must not modify them.
func tinyModel(t *testing.T, kind string) string {
	t.Helper()
	fixtureOnce.Do(func() {
		if fixtureDir, fixtureErr = os.MkdirTemp("", "rl-cmd-fixture-"); fixtureErr != nil {
			return
		}
		corpus := []string{"the quick brown fox jumps over the lazy dog", "a, b and c", "one two three four"}
		tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300, SpecialTokens: []string{"<|endoftext|>"}})
		if fixtureErr = err; err != nil {
			return
		}
		cfg, err := model.Preset("tiny", 320)
		if fixtureErr = err; err != nil {
			return
		}
		cfg.NumLayers, cfg.HiddenSize, cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.IntermediateSize, cfg.MaxPositions = 1, 32, 2, 2, 16, 64, 64
		cfg.InitializerRange = 0.02
		for _, h := range []struct {
			dir  string
			head model.Head
		}{{"lm", model.LMHead}, {"rm", model.ScoreHead}} {
			c := cfg.Clone()
			if h.head == model.ScoreHead {
				c.NumLabels = 1
			}
			tensor.ManualSeed(1)
			m, err := model.New(c, h.head, tensor.Float32, tensor.CPU)
			if fixtureErr = err; err != nil {
				return
			}
			fixtureErr = checkpoint.Save(filepath.Join(fixtureDir, h.dir), m, tok)
			m.Free()
			if fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
	return filepath.Join(fixtureDir, kind)
}

// rl runs the command line args and returns its exit code, standard output
// and standard error.
func rl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	var wg sync.WaitGroup
	var ob, eb strings.Builder
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&ob, outR) }()
	go func() { defer wg.Done(); io.Copy(&eb, errR) }()
	code = run(append([]string{"rl", "--log-format", "console"}, args...))
	os.Stdout, os.Stderr = oldOut, oldErr
	outW.Close()
	errW.Close()
	wg.Wait()
	return code, ob.String(), eb.String()
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// TestGeneratePromptWithComma: --prompt "a, b" is one prompt, not two
// (issue 11, item 11).
func TestGeneratePromptWithComma(t *testing.T) {
	dir := tinyModel(t, "lm")
	code, out, errs := rl(t, "generate", "--model", dir, "-p", "a, b", "--max-new-tokens", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows := jsonLines(t, out)
	if len(rows) != 1 || rows[0]["prompt"] != "a, b" {
		t.Fatalf("got %d rows %v, want one with prompt \"a, b\"", len(rows), rows)
	}
}

// TestGenerateSeedPerBatch: with --batch-size 1, equal prompts in
// different batches get different samples (best-of-n), and the run
// repeats exactly with the same seed (issue 11, item 11).
func TestGenerateSeedPerBatch(t *testing.T) {
	dir := tinyModel(t, "lm")
	args := []string{"generate", "--model", dir, "-p", "the", "-p", "the", "-p", "the", "-p", "the", "--do-sample", "--seed", "5", "--batch-size", "1", "--max-new-tokens", "8"}
	code, out, errs := rl(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows := jsonLines(t, out)
	seen := map[any]bool{}
	for _, r := range rows {
		seen[r["completion"]] = true
	}
	if len(rows) != 4 || len(seen) < 2 {
		t.Errorf("4 equal prompts in 4 batches gave %d distinct samples of %d: %v", len(seen), len(rows), rows)
	}
	_, again, _ := rl(t, args...)
	if again != out {
		t.Errorf("same seed, different output:\n%s\n%s", out, again)
	}
}

// TestGenerateBadGenerationConfig: an invalid generation_config.json is an
// error naming the file, not ignored.
func TestGenerateBadGenerationConfig(t *testing.T) {
	src := tinyModel(t, "lm")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			continue
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id": `), 0o644)
	code, _, errs := rl(t, "generate", "--model", dir, "-p", "the", "--max-new-tokens", "1")
	if code == 0 || !strings.Contains(errs, "generation_config.json") {
		t.Errorf("exit %d, stderr %q: want an error naming generation_config.json", code, errs)
	}
}

// TestThreadsFlag: --threads -4 is refused and --threads above the CPU
// count warns.
func TestThreadsFlag(t *testing.T) {
	if code, _, errs := rl(t, "--threads", "-4", "generate", "--model", "/nonexistent", "-p", "x"); code == 0 || !strings.Contains(errs, "--threads -4") {
		t.Errorf("--threads -4: exit %d, %q", code, errs)
	}
	defer tensor.SetNumThreads(0)
	n := strconv.Itoa(runtime.NumCPU() + 1)
	if _, _, errs := rl(t, "--threads", n, "generate", "--model", "/nonexistent", "-p", "x"); !strings.Contains(errs, "above the CPUs") {
		t.Errorf("--threads %s gave no warning: %q", n, errs)
	}
}

// TestScoreTies: rl score counts chosen == rejected pairs as ties, not as
// wrong (issue 11, item 15).
func TestScoreTies(t *testing.T) {
	dir := tinyModel(t, "rm")
	in := filepath.Join(t.TempDir(), "pairs.jsonl")
	os.WriteFile(in, []byte(`{"prompt":"the","chosen":" fox","rejected":" fox"}`+"\n"+`{"prompt":"the","chosen":" dog","rejected":" dog"}`+"\n"), 0o644)
	code, out, errs := rl(t, "score", "--model", dir, "--file", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(jsonLines(t, out)) != 2 || !strings.Contains(errs, "ties=2") || !strings.Contains(errs, "wrong=0") {
		t.Errorf("stderr %q: want ties=2 wrong=0", errs)
	}
}

// TestPredictRefusesRewardModel: softmax over a single score is always 1,
// so rl predict refuses a reward model and points to rl score.
func TestPredictRefusesRewardModel(t *testing.T) {
	dir := tinyModel(t, "rm")
	in := filepath.Join(t.TempDir(), "texts.txt")
	os.WriteFile(in, []byte("the fox\n"), 0o644)
	code, _, errs := rl(t, "predict", "--model", dir, "--file", in)
	if code == 0 || !strings.Contains(errs, "rl score") {
		t.Errorf("exit %d, stderr %q: want a refusal pointing to rl score", code, errs)
	}
}

// TestTokenizerTrainVocabZero: --vocab-size 0 is refused, not silently the
// default.
func TestTokenizerTrainVocabZero(t *testing.T) {
	in := filepath.Join(t.TempDir(), "corpus.txt")
	os.WriteFile(in, []byte("hello world\n"), 0o644)
	code, _, errs := rl(t, "tokenizer", "train", "-o", filepath.Join(t.TempDir(), "tok"), "--vocab-size", "0", in)
	if code == 0 || !strings.Contains(errs, "--vocab-size = 0: want an integer >= 1") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestDefaultSetupInBinary: rl started as main starts it (this test binary
// run as rl) runs with the default set-up applied: the cooperative
// GOMP_SPINCOUNT, and OpenBLAS's kernels fitting this CPU (SkylakeX's
// where OpenBLAS 0.3.21 falls back to Prescott's on a CPU newer than it),
// while a user's OPENBLAS_CORETYPE is kept; `rl info` reports both.
func TestDefaultSetupInBinary(t *testing.T) {
	core := tensor.BLASCore()
	if core == "" {
		t.Skip("libtorch's BLAS is not OpenBLAS")
	}
	want := core // this process runs without the set-up: OpenBLAS's own choice, or the user's
	if os.Getenv("OPENBLAS_CORETYPE") == "" {
		if b := tensor.BetterBLASCoreHere(core); b != "" {
			want = b
		}
	}
	info := func(env ...string) string {
		cmd := exec.Command(os.Args[0], "info")
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"OPENBLAS_CORETYPE", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "RL_NO_REEXEC", tensor.RLBLASDetected}, k) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append([]string{"RL_TEST_AS_RL=1", "RL_TEST_MAIN=1"}, env...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rl info: %v\n%s", err, out)
		}
		return string(out)
	}
	out := info()
	if !strings.Contains(out, "OpenBLAS, "+want+" kernels") || !strings.Contains(out, "GOMP_SPINCOUNT="+tensor.OMPSpinCount+" (rl's default") {
		t.Errorf("rl info without settings: want OpenBLAS's %s kernels and GOMP_SPINCOUNT=%s:\n%s", want, tensor.OMPSpinCount, out)
	}
	out = info("OPENBLAS_CORETYPE=Haswell", "OMP_WAIT_POLICY=passive")
	if !strings.Contains(out, "OpenBLAS, Haswell kernels: OPENBLAS_CORETYPE=Haswell from the environment") || !strings.Contains(out, "OpenMP: OMP_WAIT_POLICY=passive") {
		t.Errorf("rl info with the user's settings: want them kept:\n%s", out)
	}
}
