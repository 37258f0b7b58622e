package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// gpt2sJSON is the gpt2s shape's config.json (GPT-2 small: 12 layers,
// hidden 768, 12 heads, vocab 50257, 128 positions).
const gpt2sJSON = `{"model_type":"gpt2","n_embd":768,"n_layer":12,"n_head":12,"n_positions":128,"vocab_size":50257}`

// rlScaling measures data parallelism on the CPU (issue 15): gpt2s SFT
// (packed 128-token rows, a global batch of 4) as one process with 2
// threads, then as rl launch --nproc-per-node 2 with 1 thread each
// (per-device batch 2, gloo over loopback), and reports each run's
// train_tokens_per_second (the whole run, the first step included) and
// their ratio. A few steps each: indicative, and the figures move with
// the machine's load.
func rlScaling(e *env, config string, p measureParams) ([]*Result, error) {
	dir, bin, tok, data, err := demoSetup(e, "scaling")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initPath := filepath.Join(dir, "gpt2s.json")
	if err := os.WriteFile(initPath, []byte(gpt2sJSON), 0o644); err != nil {
		return nil, err
	}
	steps := 4
	if e.opts.quick {
		steps = 2
	}
	run := func(name string, threads int, pre []string, batch int) (float64, error) {
		args := append(pre, "--log-format", "console", "sft", "--init", initPath, "--tokenizer", tok, "--dataset", data,
			"--max-length", "128", "--packing", "--per-device-train-batch-size", strconv.Itoa(batch), "--max-steps", strconv.Itoa(steps),
			"--logging-steps", strconv.Itoa(steps), "--save-strategy", "no", "--output-dir", filepath.Join(dir, name), "--no-cache")
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads), "RL_THREADS="+strconv.Itoa(threads))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("rl %s: %v: %s", name, err, lastLines(string(out), 5))
		}
		return tokensPerS(out)
	}
	one, err := run("one-x2", 2, nil, 4)
	if err != nil {
		return nil, err
	}
	two, err := run("launch-2x1", 1, []string{"launch", "--nproc-per-node", "2", "rl"}, 2)
	if err != nil {
		return nil, err
	}
	extra := map[string]any{"steps": steps, "global_batch": 4, "seq_len": 128, "shape": "gpt2s (vocab 50257), packed demo text",
		"note": "train_tokens_per_second of the whole run (first step included); indicative on a shared machine"}
	return []*Result{
		{Name: "scaling_1x2_tokens_per_s", Config: "gpt2s", Unit: "tok/s", Better: higher, RL: one, Extra: extra},
		{Name: "scaling_2x1_tokens_per_s", Config: "gpt2s", Unit: "tok/s", Better: higher, RL: two, Extra: extra},
		{Name: "scaling_2x1_over_1x2", Config: "gpt2s", Unit: "ratio", Better: higher, RL: two / one},
	}, nil
}
