package ppo

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/train"
)

// goodReward is an external reward program (the cmd: protocol of
// shared/rollout): each completion's count of the word "good", null for a
// completion with "poor" in it. It appends every line it reads to the file
// os.Args[1], and when the file os.Args[2] holds a number N it exits with
// status 3 instead of answering the (N+1)-th line.
const goodReward = `package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func main() {
	log, err := os.OpenFile(os.Args[1], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	die := -1
	if b, err := os.ReadFile(os.Args[2]); err == nil {
		die, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	in := bufio.NewScanner(os.Stdin)
	for n := 0; in.Scan(); n++ {
		if n == die {
			fmt.Fprintln(os.Stderr, "goodreward: dying on purpose")
			os.Exit(3)
		}
		var row struct{ Completion string }
		if err := json.Unmarshal(in.Bytes(), &row); err != nil {
			fmt.Fprintln(os.Stderr, "goodreward:", err)
			os.Exit(1)
		}
		log.Write(append(in.Bytes(), '\n'))
		if strings.Contains(row.Completion, "poor") {
			fmt.Println("null")
			continue
		}
		fmt.Println(strings.Count(row.Completion, "good"))
	}
}
`

// buildGoodReward compiles goodReward into a temporary folder.
func buildGoodReward(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go toolchain to build the reward program")
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goodReward), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "goodreward")
	cmd := exec.Command(goBin, "build", "-o", bin, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the reward program: %v\n%s", err, out)
	}
	return bin
}

// programCompletions are the completions the program was sent, in order.
func programCompletions(t *testing.T, log string) []string {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row struct {
			Prompt     string `json:"prompt"`
			Completion string `json:"completion"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(row.Prompt, "review ") {
			t.Errorf("the program got prompt %q, want the dataset's", row.Prompt)
		}
		out = append(out, row.Completion)
	}
	return out
}

// TestPPORewardFuncs (issue 16): PPO scores with several reward functions
// summed with reward_weights, a cmd: program (built here) and a built-in.
// Each update's objective/scores is the mean over its 32 responses of
// 0.5 * (count of "good", null with "poor") + 2 * min(words, 20) / 20
// (builtin:length's formula), computed here from the completions the
// program was sent; rewards/{name}/mean are each function's means (nulls
// left out). A run whose program dies in update 3 fails with an error
// naming it and leaves checkpoints 1 and 2, and the run resumed from the
// last one (with the program working) logs update 3 as the uninterrupted
// run does (1e-6).
func TestPPORewardFuncs(t *testing.T) {
	prog := buildGoodReward(t)
	sftDir, data := setup(t)
	work := t.TempDir()
	logFile, ctrl := filepath.Join(work, "seen.jsonl"), filepath.Join(work, "die")
	config := func(out string) Config {
		c := ppoConfig(sftDir, data, out)
		c.Reward = ""
		c.RewardFuncs = []string{"cmd:" + prog + " " + logFile + " " + ctrl, "builtin:length"}
		c.RewardWeights = []float64{0.5, 2}
		c.TotalEpisodes = 32 * 3
		c.NumSampleGenerations = 0 // the program sees the rollouts only
		c.SaveSteps = 1
		return c
	}
	full := filepath.Join(work, "full")
	if _, err := Run(context.Background(), config(full), zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	seen := programCompletions(t, logFile)
	if len(seen) != 3*32 {
		t.Fatalf("the program scored %d completions, want 3 updates x 32", len(seen))
	}
	scores, good, length := series(t, full, "objective/scores"), series(t, full, "rewards/goodreward/mean"), series(t, full, "rewards/length/mean")
	if len(scores) != 3 || len(good) != 3 || len(length) != 3 {
		t.Fatalf("logged %d scores, %d rewards/goodreward/mean, %d rewards/length/mean; want 3 each", len(scores), len(good), len(length))
	}
	nulls := 0
	for u := range 3 {
		var sum, gsum, gn, lsum float64
		for _, c := range seen[u*32 : (u+1)*32] {
			l := float64(min(len(strings.Fields(c)), 20)) / 20
			s := 2 * l
			if strings.Contains(c, "poor") {
				nulls++
			} else {
				g := float64(strings.Count(c, "good"))
				s += 0.5 * g
				gsum, gn = gsum+g, gn+1
			}
			sum, lsum = sum+s, lsum+l
		}
		if want := sum / 32; !close(scores[u], want, 1e-9) {
			t.Errorf("update %d: objective/scores %.9f, want the weighted sum's mean %.9f", u+1, scores[u], want)
		}
		if want := gsum / gn; !close(good[u], want, 1e-9) {
			t.Errorf("update %d: rewards/goodreward/mean %.9f, want %.9f (nulls left out)", u+1, good[u], want)
		}
		if want := lsum / 32; !close(length[u], want, 1e-9) {
			t.Errorf("update %d: rewards/length/mean %.9f, want %.9f", u+1, length[u], want)
		}
	}
	if nulls == 0 || nulls == len(seen) {
		t.Errorf("%d of %d completions got null: the test wants some of each", nulls, len(seen))
	}

	// The program dies answering update 3's 7th completion.
	os.WriteFile(ctrl, []byte("70"), 0o644)
	os.Remove(logFile)
	out := filepath.Join(work, "died")
	_, err := Run(context.Background(), config(out), zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "reward program "+prog) || !strings.Contains(err.Error(), "exited (exit status 3) after answering 6 of 32") || !strings.Contains(err.Error(), "dying on purpose") {
		t.Fatalf("a dying program: err %v, want it named with its exit and stderr", err)
	}
	cks, _ := train.Checkpoints(out)
	if len(cks) != 2 || filepath.Base(cks[1]) != "checkpoint-2" {
		t.Fatalf("checkpoints %v after the program died in update 3, want checkpoint-1 and checkpoint-2", cks)
	}
	os.Remove(ctrl)
	rc := config(out)
	rc.ResumeFromCheckpoint = "last"
	res, err := Run(context.Background(), rc, zerolog.Nop(), nil)
	if err != nil {
		t.Fatalf("resume after the program died: %v", err)
	}
	if res.Updates != 3 {
		t.Errorf("resumed run ended at update %d, want 3", res.Updates)
	}
	for _, k := range []string{"objective/scores", "loss/policy_avg", "objective/kl", "rewards/goodreward/mean"} {
		want, got := series(t, full, k), series(t, out, k)
		if len(got) != 3 {
			t.Fatalf("%s: %d logs after the resume, want 3", k, len(got))
		}
		for i := range got {
			if !close(got[i], want[i], 1e-6) {
				t.Errorf("%s update %d: died+resumed %.6f, uninterrupted %.6f", k, i+1, got[i], want[i])
			}
		}
	}
}

// TestRewardConfigValidate: reward_model_path and reward_funcs are
// exclusive, one of them is required, and reward_weights count the
// functions of either.
func TestRewardConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name      string
		model     string
		funcs     []string
		weights   []float64
		want      string
		wantFuncs []string
	}{
		{"model path", "rm/", nil, nil, "", []string{"rm/"}},
		{"funcs", "", []string{"builtin:length", "cmd:x"}, []float64{1, 2}, "", []string{"builtin:length", "cmd:x"}},
		{"both", "rm/", []string{"builtin:length"}, nil, "reward_model_path (rm/) and reward_funcs (builtin:length) are both set", nil},
		{"none", "", nil, nil, "reward_model_path or reward_funcs must be set", nil},
		{"weights", "rm/", nil, []float64{1, 2}, "reward_weights has 2 values but reward_funcs names 1", nil},
	} {
		cfg := DefaultConfig()
		cfg.SFTModel, cfg.Dataset = "m", "d"
		cfg.Reward, cfg.RewardFuncs, cfg.RewardWeights = c.model, c.funcs, c.weights
		err := cfg.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			if rc, _ := cfg.rewards(); !slices.Equal(rc.RewardFuncs, c.wantFuncs) {
				t.Errorf("%s: reward functions %v, want %v", c.name, rc.RewardFuncs, c.wantFuncs)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}
