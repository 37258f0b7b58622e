package rloo

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/rollout/rollouttest"
)

// TestRLOOInterruptResumes (issue 16, item 5): rollouttest.InterruptResumes
// (a Ctrl-C mid-rollout and one mid-update each save a checkpoint at the
// next generation boundary, and the resumed run logs what the
// uninterrupted one does).
func TestRLOOInterruptResumes(t *testing.T) {
	sftDir, data := setup(t)
	rollouttest.InterruptResumes(t, func(ctx context.Context, out string, resume bool) error {
		c := rlooConfig(sftDir, data, out)
		c.RewardFuncs = []string{"builtin:rloo-test-hooked", "builtin:length"}
		spg := 4 // generations of 32 (8 prompts x 4): two optimizer steps each
		c.StepsPerGeneration = &spg
		c.MaxSteps = 6
		c.SaveSteps = 100 // no checkpoint but the interrupt's
		if resume {
			c.ResumeFromCheckpoint = "last"
		}
		_, err := Run(ctx, c, zerolog.Nop(), nil)
		return err
	}, rollouttest.GenerationInterrupts, []string{"reward", "loss", "num_tokens"})
}
