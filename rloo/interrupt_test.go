package rloo

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/rewardfn"
	"github.com/rlsuite/rl/shared/train"
)

// rewardCalls counts the calls of the rloo-test-hooked reward; onReward, when
// set, is called with the count.
var (
	rewardCalls atomic.Int64
	onReward    atomic.Pointer[func(int64)]
)

func init() {
	rewardfn.Register("rloo-test-hooked", func(p, c string) float64 {
		good, err := rewardfn.Lookup("rloo-test-good")
		if err != nil {
			panic(err)
		}
		n := rewardCalls.Add(1)
		if f := onReward.Load(); f != nil {
			(*f)(n)
		}
		return good(p, c)
	})
}

// TestRLOOInterruptResumes (issue 16, item 5): a Ctrl-C in the middle of
// a rollout (while the second generation's rewards are computed) and one
// at the end of the first rollout, while its update runs (a generation of
// 32 feeds two optimizer steps, so the trainer sees it between them),
// each save a checkpoint at the next generation boundary, and the run
// resumed from it logs the losses and rewards of the uninterrupted run to
// 1e-6.
func TestRLOOInterruptResumes(t *testing.T) {
	sftDir, data := setup(t)
	config := func(out string) Config {
		c := rlooConfig(sftDir, data, out)
		c.RewardFuncs = []string{"builtin:rloo-test-hooked", "builtin:length"}
		spg := 4 // generations of 32 (8 prompts x 4): two optimizer steps each
		c.StepsPerGeneration = &spg
		c.MaxSteps = 6
		c.SaveSteps = 100 // no checkpoint but the interrupt's
		return c
	}
	full := t.TempDir()
	if _, err := Run(context.Background(), config(full), zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		cancel int64 // the reward call that cancels (32 per generation)
		ckpt   string
	}{
		{"mid-rollout", 40, "checkpoint-4"},
		{"mid-update", 32, "checkpoint-2"},
	} {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		rewardCalls.Store(0)
		hook := func(n int64) {
			if n == c.cancel {
				cancel()
			}
		}
		onReward.Store(&hook)
		_, err := Run(ctx, config(out), zerolog.Nop(), nil)
		onReward.Store(nil)
		cancel()
		if !errors.Is(err, train.ErrInterrupted) {
			t.Fatalf("%s: err = %v, want ErrInterrupted", c.name, err)
		}
		cks, _ := train.Checkpoints(out)
		if len(cks) != 1 || filepath.Base(cks[0]) != c.ckpt {
			t.Fatalf("%s: checkpoints %v, want [%s]", c.name, cks, c.ckpt)
		}
		rc := config(out)
		rc.ResumeFromCheckpoint = "last"
		if _, err := Run(context.Background(), rc, zerolog.Nop(), nil); err != nil {
			t.Fatalf("%s: resume: %v", c.name, err)
		}
		for _, k := range []string{"reward", "loss", "num_tokens"} {
			want, got := series(t, full, k), series(t, out, k)
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d logs after the resume, want %d", c.name, k, len(got), len(want))
			}
			for i := range got {
				if !near(got[i], want[i], 1e-6) {
					t.Errorf("%s %s step %d: interrupted+resumed %.6f, uninterrupted %.6f", c.name, k, i+1, got[i], want[i])
				}
			}
		}
	}
}
