package train

import (
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestMemoryPlan: weights, gradients and AdamW's moments are counted from
// the tensors (4 + 4 + 8 bytes a float32 trainable parameter), a frozen
// copy counts as frozen, LoRA shrinks gradients and optimizer state to the
// adapters', and gradient checkpointing shrinks the activation estimate.
func TestMemoryPlan(t *testing.T) {
	cfg, err := model.Preset("tiny-llama", 64)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	ref, _ := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
	defer ref.Free()
	a := DefaultArgs()
	n := m.NumParams()
	p := planMemory([]*model.Model{m, ref}, m.Params(), &a, 4096)
	if p.Weights != 4*n || p.Gradients != 4*n || p.Optimizer != 8*n || p.Frozen != 4*n {
		t.Errorf("full fine-tuning plan %+v for %d parameters", p, n)
	}
	a.GradientCheckpointing = true
	if q := planMemory([]*model.Model{m}, m.Params(), &a, 4096); !(q.Activations < p.Activations/3) {
		t.Errorf("activations %d with gradient checkpointing, %d without", q.Activations, p.Activations)
	}
	if err := m.AddLora(model.LoraConfig{R: 4, Alpha: 8}); err != nil {
		t.Fatal(err)
	}
	l := planMemory([]*model.Model{m}, m.Trainable(), &a, 4096)
	if l.Gradients != 4*m.NumTrainable() || l.Optimizer != 8*m.NumTrainable() || !(l.Gradients < p.Gradients/50) {
		t.Errorf("LoRA plan %+v (%d trainable)", l, m.NumTrainable())
	}
	if peakRSS() <= 0 {
		t.Error("peak RSS unknown")
	}
}
