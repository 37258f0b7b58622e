package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
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

// TestCheckpointsKeepMasterDType: a model saved in bfloat16 (its source's
// dtype) writes its checkpoints in the float32 training dtype, so resume
// is exact, and its final output in bfloat16.
func TestCheckpointsKeepMasterDType(t *testing.T) {
	dir := t.TempDir()
	m := tinyLM(t)
	defer m.Free()
	m.SaveDType = tensor.BFloat16
	tr := newTrainer(t, dir, m)
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]safetensors.DType{"checkpoint-4": safetensors.F32, ".": safetensors.BF16} {
		f, err := safetensors.ReadModelDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for name, ten := range f.Tensors {
			if ten.DType != want {
				t.Errorf("%s: %s is %s, want %s", sub, name, ten.DType, want)
				break
			}
		}
	}
}

// TestRunning: Running is true inside the training loop only (an interrupt
// before it has nothing to save).
func TestRunning(t *testing.T) {
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, t.TempDir(), m)
	tr.Args.MaxSteps, tr.Args.SaveStrategy, tr.Args.EvalStrategy = 2, "no", "no"
	inside := false
	tr.StepHook = func(int) error { inside = Running(); return nil }
	if Running() {
		t.Fatal("Running before Run")
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !inside || Running() {
		t.Errorf("Running inside the loop %v, after it %v; want true, false", inside, Running())
	}
}
