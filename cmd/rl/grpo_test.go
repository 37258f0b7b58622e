package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
)

// TestGRPOAndRLOOCommands: rl grpo and rl rloo train two steps with
// built-in rewards and a reward model directory side by side, logging
// rewards/{name}/mean for each (gsm8k's only when the dataset's answer
// column reaches it: without it every reward is None), and write log_completions tables; bad flags are refused naming the option.
func TestGRPOAndRLOOCommands(t *testing.T) {
	lm, rm := tinyModel(t, "lm"), tinyModel(t, "rm")
	dir := t.TempDir()
	data := filepath.Join(dir, "p.jsonl")
	os.WriteFile(data, []byte("{\"prompt\": \"the quick\", \"answer\": \"#### 4\"}\n{\"prompt\": \"one two\", \"answer\": \"#### 3\"}\n"), 0o644)
	for _, cmd := range []string{"grpo", "rloo"} {
		out := filepath.Join(dir, cmd)
		code, _, errs := rl(t, cmd, "--model", lm, "--reward-funcs", "builtin:length,"+rm+",builtin:gsm8k", "--reward-weights", "1,0.5,1", "--dataset", data,
			"--num-generations", "2", "--per-device-train-batch-size", "4", "--max-completion-length", "3", "--max-steps", "2",
			"--logging-steps", "1", "--save-strategy", "no", "--log-completions", "--output-dir", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", cmd, code, errs)
		}
		es, err := metrics.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, e := range es {
			for k := range e.Values {
				found[k] = true
			}
		}
		for _, k := range []string{"rewards/length/mean", "rewards/rm/mean", "rewards/gsm8k/mean", "reward", "loss"} {
			if !found[k] {
				t.Errorf("%s: %s not logged", cmd, k)
			}
		}
		if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
			t.Errorf("%s: no model saved: %v", cmd, err)
		}
		// log_completions: each logged step's generation, one row per completion
		b, err := os.ReadFile(filepath.Join(out, "completions", "step-1.jsonl"))
		if n := strings.Count(string(b), "\n"); err != nil || n != 4 || !strings.Contains(string(b), `"rm":`) {
			t.Errorf("%s: completions/step-1.jsonl has %d rows (%v), want 4 with the rm reward: %s", cmd, n, err, b)
		}
	}
	for _, tr := range []string{"grpo", "rloo"} {
		code, out, errs := rl(t, "data", "show", "--trainer", tr, "--model", lm, "--dataset", data, "--n", "1", "--json")
		if code != 0 || !strings.Contains(out, `"text":"the quick"`) {
			t.Errorf("data show --trainer %s: exit %d, stdout %q, stderr %q", tr, code, out, errs)
		}
	}
	for _, c := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"grpo", []string{"--num-generations", "1"}, "num_generations: GRPO requires at least 2"},
		{"rloo", []string{"--num-generations", "1"}, "num_generations: RLOO requires at least 2"},
		{"grpo", []string{"--num-generations", "3"}, "generation_batch_size (8) must be divisible by num_generations (3)"},
		{"grpo", []string{"--loss-type", "sapo"}, `loss_type "sapo"`},
		{"grpo", []string{"--scale-rewards", "std"}, `scale_rewards "std"`},
		{"grpo", []string{"--reward-funcs", "builtin:nope"}, `no built-in reward "nope"`},
		{"grpo", []string{"--reward-funcs", filepath.Join(dir, "missing")}, "reward_funcs"},
		{"rloo", []string{"--reward-clip-range", "1"}, "reward_clip_range"},
	} {
		args := append([]string{c.cmd, "--model", lm, "--reward-funcs", "builtin:length", "--dataset", data, "--output-dir", filepath.Join(dir, "bad")}, c.args...)
		code, _, errs := rl(t, args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%s %v: exit %d, stderr %q; want an error with %q", c.cmd, c.args, code, errs, c.want)
		}
	}
}
