package train

import (
	"context"
	"math"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
)

// TestLoggedLearningRateAsHF: the learning_rate logged at step k is the
// scheduler's rate after its k-th step (HF's lr_scheduler.get_last_lr()),
// i.e. the rate of step k+1: linear decay from 3e-3 over 8 steps logs
// 3e-3 * (8-k)/8 at step k.
func TestLoggedLearningRateAsHF(t *testing.T) {
	dir := t.TempDir()
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, dir, m)
	tr.Args.WarmupSteps, tr.Args.SaveStrategy, tr.Args.EvalStrategy = 0, "no", "no"
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	es, err := metrics.ReadFile(dir + "/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		lr, ok := e.Values["learning_rate"]
		if !ok {
			continue
		}
		n++
		if want := 3e-3 * float64(8-e.Step) / 8; math.Abs(lr-want) > 1e-12 {
			t.Errorf("step %d: learning_rate %g, want %g", e.Step, lr, want)
		}
	}
	if n != 8 {
		t.Errorf("%d learning_rate logs, want 8", n)
	}
}
