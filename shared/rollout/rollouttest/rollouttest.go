// Package rollouttest holds what the GRPO and RLOO tests share: a small
// SFT policy that writes random review words, a programmatic reward (the
// share of the word "good"), a hooked copy of it that counts its calls,
// the metrics series reader and the interrupt-and-resume scenario. It is
// imported by tests only.
package rollouttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/rewardfn"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Words are the words the SFT policy learns to write.
var Words = []string{"good", "bad", "meh", "fine", "poor", "okay"}

// Goodness is the fraction of the completion's words that are "good".
func Goodness(_, c string) float64 {
	w := strings.Fields(c)
	if len(w) == 0 {
		return 0
	}
	n := 0
	for _, x := range w {
		if x == "good" {
			n++
		}
	}
	return float64(n) / float64(len(w))
}

// rewardCalls counts the calls of the hooked rewards; onReward, when
// set, is called with the count.
var (
	rewardCalls atomic.Int64
	onReward    atomic.Pointer[func(int64)]
)

// Register registers builtin:NAME-test-good (Goodness) and
// builtin:NAME-test-hooked (Goodness, counting its calls for
// InterruptResumes).
func Register(name string) {
	rewardfn.Register(name+"-test-good", Goodness)
	rewardfn.Register(name+"-test-hooked", func(p, c string) float64 {
		n := rewardCalls.Add(1)
		if f := onReward.Load(); f != nil {
			(*f)(n)
		}
		return Goodness(p, c)
	})
}

// SFT trains the policy: init is a model config file, tokDir a
// tokenizer, data the SFT rows; it writes the model into out.
type SFT func(init, tokDir, data, out string) error

// Setup trains a tokenizer and a small SFT policy (with sft) that writes
// random Words after "review N:" prompts; it returns the policy's dir and
// a file of the 10 prompts.
func Setup(t *testing.T, sft SFT) (sftDir, data string) {
	t.Helper()
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	rng := rand.New(rand.NewPCG(1, 2))
	var corpus, rows, prompts []string
	for i := 0; i < 300; i++ {
		var w []string
		for j := 0; j < 4; j++ {
			w = append(w, Words[rng.IntN(len(Words))])
		}
		p := fmt.Sprintf("review %d:", i%10)
		c := " " + strings.Join(w, " ")
		corpus = append(corpus, p+c)
		b, _ := json.Marshal(map[string]string{"prompt": p, "completion": c})
		rows = append(rows, string(b))
	}
	for i := 0; i < 10; i++ {
		b, _ := json.Marshal(map[string]string{"prompt": fmt.Sprintf("review %d:", i)})
		prompts = append(prompts, string(b))
	}
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokDir := filepath.Join(dir, "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "sft.jsonl"), []byte(strings.Join(rows, "\n")), 0o644)
	data = filepath.Join(dir, "prompts.jsonl")
	os.WriteFile(data, []byte(strings.Join(prompts, "\n")), 0o644)
	cfgPath := filepath.Join(dir, "small.json")
	os.WriteFile(cfgPath, []byte(`{"model_type":"gpt2","n_embd":64,"n_layer":2,"n_head":2,"n_positions":64,"vocab_size":320}`), 0o644)
	sftDir = filepath.Join(dir, "sft")
	if err := sft(cfgPath, tokDir, filepath.Join(dir, "sft.jsonl"), sftDir); err != nil {
		t.Fatal(err)
	}
	return sftDir, data
}

// Series is metric key's logged values in dir's metrics.jsonl, in order.
func Series(t *testing.T, dir, key string) []float64 {
	t.Helper()
	es, err := metrics.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var s []float64
	for _, e := range es {
		if v, ok := e.Values[key]; ok {
			s = append(s, v)
		}
	}
	return s
}

// Mean is x's mean.
func Mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// Interrupt is a Ctrl-C of InterruptResumes: at reward call Cancel, it
// must leave checkpoint Checkpoint alone in the output dir.
type Interrupt struct {
	Name       string
	Cancel     int64
	Checkpoint string
}

// GenerationInterrupts are GRPO's and RLOO's (generations of 32
// completions serving two optimizer steps each): a Ctrl-C in the middle
// of a rollout (while the second generation's rewards are computed:
// reward call 40) saves checkpoint-4, the next generation boundary; one
// at the end of the first rollout, while its update runs (call 32: the
// trainer sees it between the update's two steps), saves checkpoint-2.
var GenerationInterrupts = []Interrupt{{Name: "mid-rollout", Cancel: 40, Checkpoint: "checkpoint-4"}, {Name: "mid-update", Cancel: 32, Checkpoint: "checkpoint-2"}}

// InterruptResumes (issue 16, item 5): each Ctrl-C of cases, made from
// the hooked reward (Register), saves its checkpoint and nothing else,
// and the run resumed from it logs keys as the uninterrupted run does, to
// 1e-6. run trains into out with the hooked reward and no checkpoint but
// the interrupt's; resume resumes from the last checkpoint.
func InterruptResumes(t *testing.T, run func(ctx context.Context, out string, resume bool) error, cases []Interrupt, keys []string) {
	t.Helper()
	full := t.TempDir()
	if err := run(context.Background(), full, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		rewardCalls.Store(0)
		hook := func(n int64) {
			if n == c.Cancel {
				cancel()
			}
		}
		onReward.Store(&hook)
		err := run(ctx, out, false)
		onReward.Store(nil)
		cancel()
		if !errors.Is(err, train.ErrInterrupted) {
			t.Fatalf("%s: err = %v, want ErrInterrupted", c.Name, err)
		}
		cks, _ := train.Checkpoints(out)
		if len(cks) != 1 || filepath.Base(cks[0]) != c.Checkpoint {
			t.Fatalf("%s: checkpoints %v, want [%s]", c.Name, cks, c.Checkpoint)
		}
		if err := run(context.Background(), out, true); err != nil {
			t.Fatalf("%s: resume: %v", c.Name, err)
		}
		for _, k := range keys {
			want, got := Series(t, full, k), Series(t, out, k)
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("%s %s: %d logs after the resume, uninterrupted %d", c.Name, k, len(got), len(want))
			}
			for i := range got {
				if math.Abs(got[i]-want[i]) > 1e-6 {
					t.Errorf("%s %s log %d: interrupted+resumed %.6f, uninterrupted %.6f", c.Name, k, i+1, got[i], want[i])
				}
			}
		}
	}
}
