package ppo

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/rollout/rollouttest"
)

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
		c.Reward = "builtin:ppo-test-hooked"
		c.TotalEpisodes = 32 * 3
		c.NumSampleGenerations = 0 // the reward is called 32 times per update, in the rollout only
		c.SaveSteps = 100          // no checkpoint but the interrupt's
		return c
	}
	rollouttest.InterruptResumes(t, func(ctx context.Context, out string, resume bool) error {
		c := config(out)
		if resume {
			c.ResumeFromCheckpoint = "last"
		}
		res, err := Run(ctx, c, zerolog.Nop(), nil)
		if err == nil && res.Updates != 3 {
			t.Errorf("the run ended at update %d, want 3", res.Updates)
		}
		return err
	}, []rollouttest.Interrupt{{Name: "mid-rollout", Cancel: 40, Checkpoint: "checkpoint-2"}, {Name: "mid-update", Cancel: 32, Checkpoint: "checkpoint-1"}},
		[]string{"objective/scores", "loss/policy_avg", "objective/kl"})
}

func series(t *testing.T, dir, key string) []float64 { return rollouttest.Series(t, dir, key) }
