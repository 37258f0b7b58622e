package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

// runAsWorker is TestMain's rl for rl launch's workers (the test binary
// starts itself). RL_TEST_DIE_RANK=R makes rank R exit with code 7
// RL_TEST_DIE_AFTER (a duration) after its training loop started.
func runAsWorker() int {
	if r := os.Getenv("RL_TEST_DIE_RANK"); r != "" && r == os.Getenv("RANK") {
		d, _ := time.ParseDuration(os.Getenv("RL_TEST_DIE_AFTER"))
		go func() {
			for !train.Running() {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(d)
			os.Exit(7)
		}()
	}
	return run(os.Args)
}

// launchData writes n prompt-completion rows of different lengths.
func launchData(t *testing.T, n int) string {
	t.Helper()
	words := strings.Fields("the quick brown fox jumps over the lazy dog a b and c one two three four")
	var b strings.Builder
	for i := range n {
		var c []string
		for j := 0; j <= i%7; j++ {
			c = append(c, words[(i*3+j)%len(words)])
		}
		row, _ := json.Marshal(map[string]string{"prompt": words[i%len(words)] + " " + words[(i+5)%len(words)], "completion": " " + strings.Join(c, " ")})
		b.Write(append(row, '\n'))
	}
	p := filepath.Join(t.TempDir(), "data.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readMetrics(t *testing.T, dir string) map[int]map[string]float64 {
	return readLogged(t, dir, "loss")
}

// readLogged reads metrics.jsonl's entries that have key, by step.
func readLogged(t *testing.T, dir, key string) map[int]map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]float64
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if _, ok := m[key]; ok {
			out[int(m["step"])] = m
		}
	}
	return out
}

// maxWeightDiff is the largest elementwise difference between two
// model.safetensors.
func maxWeightDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	fa, err := safetensors.ReadFile(filepath.Join(a, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	fb, err := safetensors.ReadFile(filepath.Join(b, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for _, name := range fa.Names() {
		x, err1 := fa.Tensors[name].Float32s()
		y, err2 := fb.Tensors[name].Float32s()
		if err1 != nil || err2 != nil || len(x) != len(y) {
			t.Fatalf("%s: %v %v (%d vs %d values)", name, err1, err2, len(x), len(y))
		}
		for i := range x {
			worst = math.Max(worst, math.Abs(float64(x[i])-float64(y[i])))
		}
	}
	return worst
}

// TestLaunchSFTMatchesOneProcess (issue 15): rl launch --nproc-per-node 2
// (gloo over loopback, 1 thread each) with per-device batch 2 and 2
// accumulation steps trains exactly as one process with batch 4: the same
// examples per step (DistributedSampler's shards), the same token-mean
// loss (items counted across ranks), hence the same losses, gradient
// norms and final weights to float rounding, over an epoch boundary
// (16 examples, 8 a step). Rank 0's checkpoint then resumes in a world
// of 2 and of 1, each ending with the uninterrupted run's weights.
func TestLaunchSFTMatchesOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	model := tinyModel(t, "lm")
	data := launchData(t, 16)
	tmp := t.TempDir()
	one, two := filepath.Join(tmp, "one"), filepath.Join(tmp, "two")
	common := []string{"sft", "--model", model, "--dataset", data, "--max-steps", "3", "--logging-steps", "1",
		"--learning-rate", "2e-4", "--gradient-accumulation-steps", "2", "--seed", "3", "--save-steps", "2"}
	t.Setenv("RL_TEST_AS_RL", "1")
	// the workers' stderr is a pipe: JSON logs, unless CI or RL_LOG_CONSOLE asks for console
	t.Setenv("CI", "")
	t.Setenv("RL_LOG_CONSOLE", "")
	t.Setenv("OMP_NUM_THREADS", "1")
	t.Setenv("RL_THREADS", "1")
	if code, _, errs := rl(t, append(common, "--output-dir", one, "--per-device-train-batch-size", "4")...); code != 0 {
		t.Fatalf("one process: exit %d: %s", code, errs)
	}
	code, out, errs := rl(t, append([]string{"launch", "--nproc-per-node", "2", "rl"}, append(common, "--output-dir", two, "--per-device-train-batch-size", "2")...)...)
	if code != 0 {
		t.Fatalf("rl launch: exit %d:\n%s\n%s", code, out, errs)
	}
	// the workers log JSON (their stderr is a pipe)
	if !strings.Contains(errs, `[rank 0] {"level":"info","rank":0,`) || !strings.Contains(errs, `"world_size":2,"total_batch_size":8`) {
		t.Errorf("rank 0's log should be prefixed and report world_size 2, total_batch_size 8:\n%s", errs)
	}
	for _, l := range strings.Split(errs, "\n") {
		if strings.HasPrefix(l, "[rank 1] ") && strings.Contains(l, `"level":"info"`) {
			t.Errorf("rank 1 logs at info level (only rank 0 should): %s", l)
		}
	}
	m1, m2 := readMetrics(t, one), readMetrics(t, two)
	if len(m1) != 3 || len(m2) != 3 {
		t.Fatalf("logged steps: one process %d, two %d; want 3 each", len(m1), len(m2))
	}
	for step := 1; step <= 3; step++ {
		for _, k := range []string{"loss", "grad_norm", "num_tokens", "epoch", "learning_rate"} {
			a, b := m1[step][k], m2[step][k]
			if math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(a)) {
				t.Errorf("step %d %s: one process %.8g, two %.8g", step, k, a, b)
			}
		}
	}
	sameWeights(t, model, one, two, 2e-4)
	// resume rank 0's checkpoint-2 in a world of 2, and of 1 with batch 4
	resumeInWorlds(t, tmp, common, filepath.Join(two, "checkpoint-2"), one, "4", "2")
}

// TestLaunchWorkerDiesMidRun (issue 15): a rank that dies mid-run stops
// the world: rl launch returns that rank's exit code and the other rank
// exits with an error naming its rank and the operation (or is stopped),
// well within the timeout, instead of hanging.
func TestLaunchWorkerDiesMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	model := tinyModel(t, "lm")
	data := launchData(t, 16)
	t.Setenv("RL_TEST_AS_RL", "1")
	// the workers' stderr is a pipe: JSON logs, unless CI or RL_LOG_CONSOLE asks for console
	t.Setenv("CI", "")
	t.Setenv("RL_LOG_CONSOLE", "")
	t.Setenv("OMP_NUM_THREADS", "1")
	t.Setenv("RL_THREADS", "1")
	t.Setenv("RL_TEST_DIE_RANK", "1")
	t.Setenv("RL_TEST_DIE_AFTER", "1s")
	began := time.Now()
	code, out, errs := rl(t, "--ddp-timeout", "20", "launch", "--nproc-per-node", "2", "rl", "--ddp-timeout", "20", "sft", "--model", model, "--dataset", data,
		"--max-steps", "100000", "--logging-steps", "1000", "--save-strategy", "no", "--per-device-train-batch-size", "2",
		"--output-dir", filepath.Join(t.TempDir(), "out"))
	took := time.Since(began)
	if code != 7 {
		t.Fatalf("exit %d, want rank 1's 7:\n%s\n%s", code, out, errs)
	}
	if took > 40*time.Second {
		t.Errorf("the world took %s to stop", took)
	}
	last := lastLine(errs, "[rank 0] ")
	if !strings.Contains(last, "dist: rank 0 of 2") || !strings.Contains(last, "a peer rank exited") {
		t.Errorf("rank 0's last words do not name its rank, the operation and the dead peer: %s\n%s", last, errs)
	}
	t.Logf("stopped in %s; rank 0 said: %s", took.Round(time.Millisecond), last)
}

func lastLine(s, prefix string) string {
	var last string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			last = l
		}
	}
	return last
}

func TestLaunchBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"launch", "--nproc-per-node", "0", "rl", "sft"}, "--nproc-per-node 0"},
		{[]string{"launch", "--nproc-per-node", "2"}, "no command"},
		{[]string{"launch", "--nnodes", "2", "--node-rank", "2", "sft"}, "--node-rank 2"},
		{[]string{"launch", "--master-port", "70000", "sft"}, "--master-port 70000"},
		{[]string{"launch", "rl", "launch", "sft"}, "cannot be launch"},
	} {
		err := rlApp(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestWorkerEnv: each worker gets torchrun's variables, an outer
// torchrun's agent-store flag removed, and one thread unless set.
func TestWorkerEnv(t *testing.T) {
	t.Setenv("OMP_NUM_THREADS", "")
	os.Unsetenv("OMP_NUM_THREADS")
	os.Unsetenv("RL_THREADS")
	p := launchPlan{NProc: 2, NNodes: 2, NodeRank: 1, MasterAddr: "node0", MasterPort: 29500}
	env := workerEnv([]string{"PATH=/bin", "TORCHELASTIC_USE_AGENT_STORE=True", "RANK=9"}, p, 1, "id")
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("%s set twice", k)
		}
		got[k] = v
	}
	want := map[string]string{"PATH": "/bin", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
		"GROUP_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "29500", "OMP_NUM_THREADS": "1", "RL_THREADS": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["TORCHELASTIC_USE_AGENT_STORE"]; ok {
		t.Error("the outer TORCHELASTIC_USE_AGENT_STORE was kept: rank 0 would not host the store")
	}
}

// TestDeviceCUDAWithoutCUDA: with a CPU-only libtorch, --device cuda (and
// cuda:N) stops every trainer with a clear message before loading
// anything, not with a libtorch crash.
func TestDeviceCUDAWithoutCUDA(t *testing.T) {
	if tensor.CUDAAvailable() {
		t.Skip("this libtorch has CUDA")
	}
	for _, dev := range []string{"cuda", "cuda:1"} {
		for _, cmd := range []string{"sft", "dpo", "ppo", "grpo"} {
			code, _, errs := rl(t, "--device", dev, cmd, "--output-dir", t.TempDir())
			if code != 1 || !strings.Contains(errs, "--device cuda") && !strings.Contains(errs, "device cuda:1: only 0 CUDA devices") {
				t.Errorf("rl --device %s %s: exit %d, stderr %q; want a clear refusal", dev, cmd, code, errs)
			}
			if strings.Contains(errs, "frame #") || strings.Contains(errs, "panic") {
				t.Errorf("rl --device %s %s: a crash: %s", dev, cmd, errs)
			}
		}
	}
}

// TestLaunchDPOMatchesOneProcess (issue 15): DPO's loss is a mean over
// pairs, so DDP's average of two ranks' means of 2 pairs each is one
// process's mean of 4: the same losses, reward metrics and final weights
// over an epoch boundary (8 pairs, 4 a step).
func TestLaunchDPOMatchesOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	model := tinyModel(t, "lm")
	data := pairData(t, 8)
	tmp := t.TempDir()
	one, two := filepath.Join(tmp, "one"), filepath.Join(tmp, "two")
	common := []string{"dpo", "--model", model, "--dataset", data, "--max-steps", "3", "--logging-steps", "1",
		"--learning-rate", "1e-3", "--seed", "5", "--save-strategy", "no"}
	t.Setenv("RL_TEST_AS_RL", "1")
	// the workers' stderr is a pipe: JSON logs, unless CI or RL_LOG_CONSOLE asks for console
	t.Setenv("CI", "")
	t.Setenv("RL_LOG_CONSOLE", "")
	t.Setenv("OMP_NUM_THREADS", "1")
	t.Setenv("RL_THREADS", "1")
	if code, _, errs := rl(t, append(common, "--output-dir", one, "--per-device-train-batch-size", "4")...); code != 0 {
		t.Fatalf("one process: exit %d: %s", code, errs)
	}
	if code, out, errs := rl(t, append([]string{"launch", "--nproc-per-node", "2", "rl"}, append(common, "--output-dir", two, "--per-device-train-batch-size", "2")...)...); code != 0 {
		t.Fatalf("rl launch: exit %d:\n%s\n%s", code, out, errs)
	}
	m1, m2 := readMetrics(t, one), readMetrics(t, two)
	if len(m1) != 3 || len(m2) != 3 {
		t.Fatalf("logged steps: one process %d, two %d; want 3 each", len(m1), len(m2))
	}
	for step := 1; step <= 3; step++ {
		for _, k := range []string{"loss", "grad_norm", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen"} {
			a, b := m1[step][k], m2[step][k]
			if _, ok := m1[step][k]; !ok {
				t.Fatalf("step %d: no %s logged: %v", step, k, m1[step])
			}
			if math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(a)) {
				t.Errorf("step %d %s: one process %.8g, two %.8g", step, k, a, b)
			}
		}
	}
	sameWeights(t, model, one, two, 1e-4)
}
