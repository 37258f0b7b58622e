package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
)

// demoSetup makes a temporary dir (rl-bench-NAME-*; the caller removes
// it), builds the rl binary into it and writes the embedded demo task's
// text and a 512-token tokenizer of it, as rl demo writes them.
func demoSetup(e *env, name string) (dir, bin, tok, data string, err error) {
	if dir, err = os.MkdirTemp("", "rl-bench-"+name+"-"); err != nil {
		return "", "", "", "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	bin = filepath.Join(dir, "rl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rl")
	build.Dir = e.root
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", "", "", fmt.Errorf("build rl: %v: %s", err, out)
	}
	data = filepath.Join(dir, "data.txt")
	var text bytes.Buffer
	for i := 0; i < 4000; i++ {
		fmt.Fprintf(&text, "the film was %s and the acting was %s, said review number %d.\n", []string{"good", "bad", "long"}[i%3], []string{"fine", "poor"}[i%2], i)
	}
	if err := os.WriteFile(data, text.Bytes(), 0o644); err != nil {
		return "", "", "", "", err
	}
	tok = filepath.Join(dir, "tok")
	if out, err := exec.Command(bin, "tokenizer", "train", "--vocab-size", "512", "-o", tok, data).CombinedOutput(); err != nil {
		return "", "", "", "", fmt.Errorf("rl tokenizer train: %v: %s", err, out)
	}
	return dir, bin, tok, data, nil
}

// tokensPerS is the train_tokens_per_second an rl run printed.
func tokensPerS(out []byte) (float64, error) {
	m := regexp.MustCompile(`train_tokens_per_second ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("rl printed no train_tokens_per_second: %s", lastLines(string(out), 5))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// rlShare measures sharing the machine (issue 14): the same tiny SFT run
// of the rl binary alone, then two of them at once, each with rl's default
// set-up (its malloc and OpenMP settings), and reports each concurrent
// run's throughput against the solo one. Target: each keeps >= 40%.
func rlShare(e *env, config string, p measureParams) ([]*Result, error) {
	dir, bin, tok, data, err := demoSetup(e, "share")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	steps := 40
	if e.opts.quick {
		steps = 20
	}
	one := func(name string) (float64, error) {
		cmd := exec.Command(bin, "--log-format", "console", "sft", "--init", "tiny", "--tokenizer", tok, "--dataset", data,
			"--max-length", "128", "--packing", "--per-device-train-batch-size", "8", "--max-steps", strconv.Itoa(steps),
			"--save-strategy", "no", "--output-dir", filepath.Join(dir, name), "--no-cache")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("rl sft: %v: %s", err, lastLines(string(out), 5))
		}
		return tokensPerS(out)
	}
	solo, err := one("solo")
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	pair := make([]float64, 2)
	errs := make([]error, 2)
	for i := range pair {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pair[i], errs[i] = one(fmt.Sprintf("pair-%d", i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	worst := min(pair[0], pair[1]) / solo
	pass := worst >= 0.4
	return []*Result{
		{Name: "share_solo_tokens_per_s", Unit: "tok/s", Better: "higher", RL: solo},
		{Name: "share_pair_tokens_per_s", Unit: "tok/s", Better: "higher", RL: (pair[0] + pair[1]) / 2, Extra: map[string]any{"each": pair}},
		{Name: "share_pair_over_solo", Unit: "fraction", Better: "higher", RL: worst, Target: ">= 0.4 each", Pass: &pass},
	}, nil
}

// rlWorkdir makes a temporary directory (removed by the caller, also on
// error) with the rl binary built into it and the demo task's text and
// tokenizer (writeTextAndTokenizer, 4000 lines).
func rlWorkdir(root, prefix string) (dir, bin, data, tok string, err error) {
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", "", "", err
	}
	if bin, err = buildRL(root, dir); err != nil {
		return dir, "", "", "", err
	}
	data, tok, err = writeTextAndTokenizer(bin, dir, 4000)
	return dir, bin, data, tok, err
}

// buildRL builds the rl binary into dir.
func buildRL(root, dir string) (string, error) {
	bin := filepath.Join(dir, "rl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build rl: %v: %s", err, out)
	}
	return bin, nil
}

// writeTextAndTokenizer writes lines of the embedded demo task's reviews
// into dir/data.txt and trains a 512-token tokenizer on them (dir/tok),
// as rl demo does.
func writeTextAndTokenizer(bin, dir string, lines int) (data, tok string, err error) {
	data = filepath.Join(dir, "data.txt")
	var text bytes.Buffer
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&text, "the film was %s and the acting was %s, said review number %d.\n", []string{"good", "bad", "long"}[i%3], []string{"fine", "poor"}[i%2], i)
	}
	if err := os.WriteFile(data, text.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	tok = filepath.Join(dir, "tok")
	if out, err := exec.Command(bin, "tokenizer", "train", "--vocab-size", "512", "-o", tok, data).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("rl tokenizer train: %v: %s", err, out)
	}
	return data, tok, nil
}
