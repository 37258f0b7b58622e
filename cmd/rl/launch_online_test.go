package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// launchEnv makes rl launch's workers the test binary, logging JSON, one
// thread each.
func launchEnv(t *testing.T) {
	t.Helper()
	t.Setenv("RL_TEST_AS_RL", "1")
	// the workers' stderr is a pipe: JSON logs, unless CI or RL_LOG_CONSOLE asks for console
	t.Setenv("CI", "")
	t.Setenv("RL_LOG_CONSOLE", "")
	t.Setenv("OMP_NUM_THREADS", "1")
	t.Setenv("RL_THREADS", "1")
}

// promptData writes n prompts.
func promptData(t *testing.T, n int) string {
	t.Helper()
	words := strings.Fields("the quick brown fox jumps over the lazy dog a b and c one two three four")
	var b strings.Builder
	for i := range n {
		row, _ := json.Marshal(map[string]string{"prompt": strings.Join(words[i%len(words):i%len(words)+1+i%3], " ")})
		b.Write(append(row, '\n'))
	}
	p := filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameMetrics fails unless the two runs logged keys alike to 1e-5 at
// each of steps logged steps: the same value where one process logged a
// key (generation metrics only at steps that generate), and each key at
// least once.
func sameMetrics(t *testing.T, one, two string, steps int, keys []string) {
	t.Helper()
	m1, m2 := readMetrics(t, one), readMetrics(t, two)
	if len(m1) != steps || len(m2) != steps {
		t.Fatalf("logged steps: one process %d, two %d; want %d each", len(m1), len(m2), steps)
	}
	for _, k := range keys {
		seen := false
		for step := 1; step <= steps; step++ {
			a, ok1 := m1[step][k]
			b, ok2 := m2[step][k]
			if ok1 != ok2 {
				t.Fatalf("step %d: %s logged by one process %v, by two %v", step, k, ok1, ok2)
			}
			if !ok1 {
				continue
			}
			seen = true
			if math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(a)) {
				t.Errorf("step %d %s: one process %.8g, two %.8g", step, k, a, b)
			}
		}
		if !seen {
			t.Errorf("%s never logged", k)
		}
	}
}

// sameWeights fails unless one's and two's final weights agree to 1e-5
// and moved at least moved from start's (else the comparison proves
// nothing).
func sameWeights(t *testing.T, start, one, two string, moved float64) {
	t.Helper()
	if d := maxWeightDiff(t, one, two); d > 1e-5 {
		t.Errorf("final weights differ by %g (want <= 1e-5)", d)
	}
	if d := maxWeightDiff(t, start, two); d < moved {
		t.Errorf("training moved the weights by only %g: the comparison proves nothing", d)
	}
}

// launchDirs skips in -short mode and returns a temporary dir and the
// one-process and two-process output dirs in it.
func launchDirs(t *testing.T) (tmp, one, two string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	tmp = t.TempDir()
	return tmp, filepath.Join(tmp, "one"), filepath.Join(tmp, "two")
}

// oneAndTwo runs common into one as one process with per-device batch
// bsOne, then into two as rl launch --nproc-per-node 2 with bsTwo; it
// returns the launch's standard error.
func oneAndTwo(t *testing.T, common []string, one, two, bsOne, bsTwo string) string {
	t.Helper()
	if code, _, errs := rl(t, append(common, "--output-dir", one, "--per-device-train-batch-size", bsOne)...); code != 0 {
		t.Fatalf("one process: exit %d: %s", code, errs)
	}
	code, out, errs := rl(t, append([]string{"launch", "--nproc-per-node", "2", "rl"}, append(common, "--output-dir", two, "--per-device-train-batch-size", bsTwo)...)...)
	if code != 0 {
		t.Fatalf("rl launch: exit %d:\n%s\n%s", code, out, errs)
	}
	return errs
}

// resumeInWorlds resumes checkpoint ckpt of common in a world of 2 (with
// per-device batch bsTwo) and of 1 (bsOne), each into a new dir under
// tmp, and checks that both end with want's final weights.
func resumeInWorlds(t *testing.T, tmp string, common []string, ckpt, want, bsOne, bsTwo string) {
	t.Helper()
	for _, w := range []struct {
		name string
		args []string
		bs   string
	}{
		{"world of 2", []string{"launch", "--nproc-per-node", "2", "rl"}, bsTwo},
		{"world of 1", nil, bsOne},
	} {
		dir := filepath.Join(tmp, strings.ReplaceAll(w.name, " ", "-"))
		args := append(append([]string{}, w.args...), append(common, "--output-dir", dir, "--per-device-train-batch-size", w.bs,
			"--resume-from-checkpoint", ckpt)...)
		if code, out, errs := rl(t, args...); code != 0 {
			t.Fatalf("resume in a %s: exit %d:\n%s\n%s", w.name, code, out, errs)
		}
		if d := maxWeightDiff(t, want, dir); d > 1e-5 {
			t.Errorf("resumed in a %s: final weights differ from the uninterrupted run's by %g", w.name, d)
		}
	}
}

// TestLaunchGRPOMatchesOneProcess (issue 15): rl launch --nproc-per-node
// 2 with per-device batch 2 trains GRPO exactly as one process with
// batch 4: each rank samples its share of every generation (each row's
// sampler keyed by its row in the whole generation), the shares are
// gathered so that advantages and the generation metrics are the whole
// batch's, micro-batch k of the world is one process's micro-batch k,
// the dapo normaliser is the generation's tokens over the world size,
// and the loss metrics are reduced across ranks as TRL's (token sums and
// counts). Each generation of 16 serves two optimizer steps of two
// micro-batches (steps_per_generation 4, gradient_accumulation_steps 2),
// so the old log-probs are kept (gathered too) and each step trains on
// the generation's shuffled micro-batches 2k, 2k+1: rank r's every other
// sample of them. So the losses, rewards, KL, entropy, clip ratios,
// lengths and final weights agree to float rounding; rank 0's
// checkpoint-2 (a generation boundary) then resumes in a world of 2 and
// of 1 to the same weights.
func TestLaunchGRPOMatchesOneProcess(t *testing.T) {
	tmp, one, two := launchDirs(t)
	lm, rm := tinyModel(t, "lm"), tinyModel(t, "rm")
	data := promptData(t, 8)
	common := []string{"grpo", "--model", lm, "--dataset", data, "--reward-funcs", rm + ",builtin:length", "--reward-weights", "1,0.1",
		"--num-generations", "2", "--max-completion-length", "4", "--max-steps", "3", "--logging-steps", "1",
		"--learning-rate", "3e-3", "--beta", "0.04", "--gradient-accumulation-steps", "2", "--steps-per-generation", "4",
		"--seed", "7", "--save-steps", "2"}
	launchEnv(t)
	oneAndTwo(t, common, one, two, "4", "2")
	sameMetrics(t, one, two, 3, []string{"loss", "grad_norm", "reward", "reward_std", "rewards/rm/mean", "rewards/length/std", "kl", "entropy",
		"completions/mean_length", "clip_ratio/region_mean", "frac_reward_zero_std", "num_tokens", "epoch"})
	sameWeights(t, lm, one, two, 1e-4)
	resumeInWorlds(t, tmp, common, filepath.Join(two, "checkpoint-2"), one, "4", "2")
}

// TestLaunchRLOOFewerPromptsThanRanks: per-device batch 1 and 2
// generations per prompt make generations of one prompt in a world of 2:
// rank 0 samples and scores it, rank 1 samples nothing, and each trains
// on one of the gathered completions; the run is one process's with
// batch 2 (RLOO here: its old log-probs and KL come through the gather).
func TestLaunchRLOOFewerPromptsThanRanks(t *testing.T) {
	_, one, two := launchDirs(t)
	lm, rm := tinyModel(t, "lm"), tinyModel(t, "rm")
	common := []string{"rloo", "--model", lm, "--dataset", promptData(t, 4), "--reward-funcs", rm, "--num-generations", "2",
		"--max-completion-length", "4", "--max-steps", "2", "--logging-steps", "1", "--learning-rate", "3e-3", "--seed", "3",
		"--save-strategy", "no"}
	launchEnv(t)
	oneAndTwo(t, common, one, two, "2", "1")
	sameMetrics(t, one, two, 2, []string{"loss", "grad_norm", "reward", "kl", "entropy", "num_tokens"})
	sameWeights(t, lm, one, two, 1e-5)
}

// TestLaunchPPOMatchesOneProcess (issue 15): PPO's rollout is the
// world's: each rank generates and scores its share (per-row sampler
// seeds), the shares are gathered so that the advantage whitening and
// the objective/* metrics are the whole batch's, and the trainer's
// DistributedSampler cut serves each rank its micro-batches. With
// responses of response_length tokens (no stop token, TRL's default)
// every masked mean is over equal counts, so DDP's average of the ranks'
// micro-batch losses is one process's: the same losses, metrics and
// final weights to float rounding. Rank 0's checkpoint-1 (the first
// update) resumes in a world of 2 and of 1 to the same weights.
func TestLaunchPPOMatchesOneProcess(t *testing.T) {
	tmp, one, two := launchDirs(t)
	lm, rm := tinyModel(t, "lm"), tinyModel(t, "rm")
	data := promptData(t, 8)
	common := []string{"ppo", "--sft-model-path", lm, "--reward-model-path", rm, "--dataset", data, "--response-length", "4",
		"--total-episodes", "16", "--num-ppo-epochs", "2", "--learning-rate", "3e-3", "--gradient-accumulation-steps", "2",
		"--seed", "5", "--save-steps", "1", "--num-sample-generations", "0"}
	launchEnv(t)
	oneAndTwo(t, common, one, two, "4", "2")
	sameMetrics(t, one, two, 2, []string{"loss", "grad_norm", "objective/kl", "objective/scores", "objective/rlhf_reward", "objective/entropy",
		"val/num_eos_tokens", "policy/approxkl_avg", "loss/value_avg", "episode"})
	sameWeights(t, lm, one, two, 1e-4)
	resumeInWorlds(t, tmp, common, filepath.Join(two, "checkpoint-1"), one, "4", "2")
}

// TestLaunchPPORewardFuncsWorldMeans (issue 16): with several reward
// functions each rank scores its share and the per-function rewards are
// gathered with the rollout, so rewards/{name}/mean in a world of 2 is the
// whole batch's mean, one process's. The cmd: program has no reward
// (null) for the prompts with "the" or "fox", which fall unevenly on the
// ranks, so an average of the ranks' own means would differ.
func TestLaunchPPORewardFuncsWorldMeans(t *testing.T) {
	_, one, two := launchDirs(t)
	lm := tinyModel(t, "lm")
	prog := filepath.Join(t.TempDir(), "reward.sh")
	script := "#!/bin/sh\nwhile read -r line; do\n  case \"$line\" in\n    *'\"prompt\":\"the'*|*'\"prompt\":\"fox'*) echo null ;;\n    *) echo ${#line} ;;\n  esac\ndone\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	common := []string{"ppo", "--sft-model-path", lm, "--reward-funcs", "cmd:" + prog + ",builtin:length", "--reward-weights", "0.01,0.1",
		"--dataset", promptData(t, 8), "--response-length", "4", "--total-episodes", "16", "--num-ppo-epochs", "1",
		"--seed", "5", "--num-sample-generations", "0"}
	launchEnv(t)
	oneAndTwo(t, common, one, two, "4", "2")
	sameMetrics(t, one, two, 4, []string{"objective/scores", "rewards/reward.sh/mean", "rewards/length/mean"})
}

// TestLaunchEvalSharded (issue 15): in a world of 2 each rank evaluates
// its every other eval example (3 held-out pairs: 2 on rank 0, 1 on rank
// 1, no padding) and the example-weighted sums are added across ranks,
// so DPO's eval metrics (means over pairs) are one process's to float
// rounding, before and after a training step (one step: the 7 training
// pairs are no whole epoch of 2 x 2, whose padding would change step 2).
func TestLaunchEvalSharded(t *testing.T) {
	_, one, two := launchDirs(t)
	lm := tinyModel(t, "lm")
	data := pairData(t, 10)
	common := []string{"dpo", "--model", lm, "--dataset", data, "--eval-ratio", "0.3", "--max-steps", "1", "--eval-on-start", "--logging-steps", "1",
		"--eval-strategy", "steps", "--eval-steps", "1", "--learning-rate", "1e-3", "--seed", "5", "--save-strategy", "no"}
	launchEnv(t)
	if code, _, errs := rl(t, append(common, "--output-dir", one, "--per-device-train-batch-size", "4", "--per-device-eval-batch-size", "4")...); code != 0 {
		t.Fatalf("one process: exit %d: %s", code, errs)
	}
	code, out, errs := rl(t, append([]string{"launch", "--nproc-per-node", "2", "rl"}, append(common, "--output-dir", two,
		"--per-device-train-batch-size", "2", "--per-device-eval-batch-size", "2")...)...)
	if code != 0 {
		t.Fatalf("rl launch: exit %d:\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, `"examples":2,"of":3,"world_size":2`) {
		t.Errorf("rank 0 should have evaluated 2 of the 3 pairs:\n%s", errs)
	}
	e1, e2 := readEvals(t, one), readEvals(t, two)
	if len(e1) != 2 || len(e2) != 2 {
		t.Fatalf("evaluations: one process %d, two %d; want 2 each", len(e1), len(e2))
	}
	for step, m := range e1 {
		for _, k := range []string{"eval_loss", "eval_rewards/chosen", "eval_rewards/margins", "eval_logps/rejected"} {
			a, ok := m[k]
			if !ok {
				t.Fatalf("step %d: no %s: %v", step, k, m)
			}
			if c := e2[step][k]; math.Abs(a-c) > 1e-5*math.Max(1, math.Abs(a)) {
				t.Errorf("step %d %s: one process %.8g, two %.8g", step, k, a, c)
			}
		}
	}
}

func readEvals(t *testing.T, dir string) map[int]map[string]float64 {
	return readLogged(t, dir, "eval_loss")
}

// pairData writes n preference pairs of different lengths.
func pairData(t *testing.T, n int) string {
	t.Helper()
	words := strings.Fields("the quick brown fox jumps over the lazy dog a b and c one two three four")
	var b strings.Builder
	for i := range n {
		row, _ := json.Marshal(map[string]string{"prompt": words[i] + " " + words[i+1] + " ",
			"chosen": strings.Join(words[i+2:i+3+i%3], " "), "rejected": strings.Join(words[i+5:i+6+i%2], " ")})
		b.Write(append(row, '\n'))
	}
	p := filepath.Join(t.TempDir(), "pairs.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLaunchGRPOWorkerDiesInRollout (issue 15): a rank killed inside a
// rollout (its cmd: reward program SIGKILLs it while scoring the 21st
// completion of rank 1) stops the world: rl launch fails and the other
// rank, waiting in the generation's gather, exits with an error naming
// its rank, the operation and the dead peer, well within the timeout,
// instead of hanging.
func TestLaunchGRPOWorkerDiesInRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	lm := tinyModel(t, "lm")
	launchEnv(t)
	prog := filepath.Join(t.TempDir(), "reward.sh")
	script := "#!/bin/sh\nn=0\nwhile read -r line; do\n  n=$((n+1))\n  if [ \"$RANK\" = 1 ] && [ $n -gt 20 ]; then kill -9 $PPID; fi\n  echo 1.5\ndone\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code, out, errs := rl(t, "--ddp-timeout", "20", "launch", "--nproc-per-node", "2", "rl", "--ddp-timeout", "20", "grpo", "--model", lm,
		"--dataset", promptData(t, 8), "--reward-funcs", "cmd:"+prog, "--num-generations", "2", "--max-completion-length", "4",
		"--max-steps", "100", "--logging-steps", "1000", "--save-strategy", "no", "--per-device-train-batch-size", "2",
		"--output-dir", filepath.Join(t.TempDir(), "out"))
	took := time.Since(began)
	if code == 0 {
		t.Fatalf("exit 0, want a failure:\n%s\n%s", out, errs)
	}
	if took > 40*time.Second {
		t.Errorf("the world took %s to stop", took)
	}
	last := lastLine(errs, "[rank 0] ")
	if !strings.Contains(last, "gather the generation: dist: rank 0 of 2") || !strings.Contains(last, "a peer rank exited") {
		t.Errorf("rank 0's last words do not name the rollout's gather, its rank and the dead peer: %s\n%s", last, errs)
	}
	t.Logf("exit %d, stopped in %s; rank 0 said: %s", code, took.Round(time.Millisecond), last)
}
