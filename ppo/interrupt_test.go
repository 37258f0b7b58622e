package ppo

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/rewardfn"
	"github.com/rlsuite/rl/shared/train"
)

// rewardCalls counts the calls of the test-good-hooked reward; onReward,
// when set, is called with the count.
var (
	rewardCalls atomic.Int64
	onReward    atomic.Pointer[func(int64)]
)

func init() {
	rewardfn.Register("test-good-hooked", func(p, c string) float64 {
		good, err := rewardfn.Lookup("test-good")
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

// TestPPOInterruptResumesExactly (issue 16, item 5): a Ctrl-C in the middle
// of a rollout (while update 2's responses are scored) and one at the end
// of update 1's rollout, which the trainer sees between that update's two
// optimizer steps, each save a checkpoint at the end of the update that
// resumes (no index panic in rolloutData.Batch) and logs the scores,
// policy losses and KL of the uninterrupted run to 1e-6.
func TestPPOInterruptResumesExactly(t *testing.T) {
	sftDir, data := setup(t)
	config := func(out string) Config {
		c := ppoConfig(sftDir, data, out)
		c.Reward = "builtin:test-good-hooked"
		c.TotalEpisodes = 32 * 3
		c.NumSampleGenerations = 0 // the reward is called 32 times per update, in the rollout only
		c.SaveSteps = 100          // no checkpoint but the interrupt's
		return c
	}
	full := t.TempDir()
	if _, err := Run(context.Background(), config(full), zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		cancel int64
		ckpt   string
	}{
		{"mid-rollout", 40, "checkpoint-2"},
		{"mid-update", 32, "checkpoint-1"},
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
		res, err := Run(context.Background(), rc, zerolog.Nop(), nil)
		if err != nil {
			t.Fatalf("%s: resume: %v", c.name, err)
		}
		if res.Updates != 3 {
			t.Errorf("%s: resumed run ended at update %d, want 3", c.name, res.Updates)
		}
		for _, k := range []string{"objective/scores", "loss/policy_avg", "objective/kl"} {
			want, got := series(t, full, k), series(t, out, k)
			if len(got) != len(want) || len(want) != 3 {
				t.Fatalf("%s %s: %d logs after the resume, uninterrupted %d, want 3", c.name, k, len(got), len(want))
			}
			for i := range got {
				if !close(got[i], want[i], 1e-6) {
					t.Errorf("%s %s update %d: interrupted+resumed %.6f, uninterrupted %.6f", c.name, k, i+1, got[i], want[i])
				}
			}
		}
	}
}

// series is the logged values of metric key in dir's metrics.jsonl.
func series(t *testing.T, dir, key string) []float64 {
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
