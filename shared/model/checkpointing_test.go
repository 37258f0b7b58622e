package model

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// gradsOf runs a training forward of m on a fixed left-padded batch,
// backpropagates sum(logits * w) for fixed w, and returns every trainable
// gradient (and the loss).
func gradsOf(t *testing.T, m *Model) (map[string][]float32, float64) {
	t.Helper()
	out := map[string][]float32{}
	var loss float64
	for _, p := range m.Trainable() {
		p.T.SetRequiresGrad(true)
		p.T.ZeroGrad()
	}
	tensor.Tidy(func() {
		ids := []int64{3, 7, 1, 9, 4, 4, 0, 0, 5, 2, 8, 11}
		mask := []int64{1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1}
		in := &Input{IDs: tensor.FromInt64s(ids, 2, 6), AttentionMask: tensor.FromInt64s(mask, 2, 6), Train: true}
		lg := m.Forward(in)
		if want := map[bool]int{true: 1, false: 0}[m.GradientCheckpointing]; len(m.ckpts) != want {
			t.Fatalf("%d checkpointed passes pending after the forward, want %d", len(m.ckpts), want)
		}
		tensor.ManualSeed(11)
		w := tensor.Randn(lg.Shape(), tensor.Float32, tensor.CPU)
		l := lg.Mul(w).Sum()
		loss = l.Item()
		l.Backward()
		m.FinishBackward()
		for _, p := range m.Trainable() {
			if g := p.T.Grad(); g != nil {
				out[p.Name] = g.Float32s()
			}
		}
	})
	return out, loss
}

// TestGradientCheckpointingExact: with each decoder layer recomputed in
// backward, the loss and every gradient (embeddings, layers, norms, head;
// LoRA adapters on top) equal those of the plain backward.
func TestGradientCheckpointingExact(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		for _, lora := range []bool{false, true} {
			dir := filepath.Join("testdata", "peft", fam, "base")
			m, err := Load(dir, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if lora {
				if err := m.AddLora(LoraConfig{R: 2, Alpha: 4, TargetModules: []string{"all-linear"}}); err != nil {
					t.Fatal(err)
				}
				tensor.NoGrad(func() {
					for _, p := range m.Trainable() {
						p.T.Normal_(0, 0.2) // B nonzero so every adapter has gradients
					}
				})
			}
			plain, l0 := gradsOf(t, m)
			m.GradientCheckpointing = true
			ck, l1 := gradsOf(t, m)
			if len(m.ckpts) != 0 {
				t.Errorf("%s: %d checkpoints left after FinishBackward", fam, len(m.ckpts))
			}
			if math.Abs(l0-l1) > 1e-5*math.Abs(l0) {
				t.Errorf("%s lora=%v: loss %g with checkpointing, %g without", fam, lora, l1, l0)
			}
			if len(ck) != len(plain) || len(plain) == 0 {
				t.Fatalf("%s lora=%v: %d gradients with checkpointing, %d without", fam, lora, len(ck), len(plain))
			}
			for name, g := range plain {
				worst := 0.0
				for i := range g {
					worst = math.Max(worst, math.Abs(float64(g[i]-ck[name][i]))/(1e-3+math.Abs(float64(g[i]))))
				}
				if worst > 1e-4 {
					t.Errorf("%s lora=%v: %s gradient differs by %.3g (relative)", fam, lora, name, worst)
				}
			}
			m.Free()
		}
	}
}

// TestLayerTemporariesFreed: a training forward without checkpointing frees
// each decoder layer's intermediates (the scores before softmax, the MLP's
// products: what autograd does not keep) as the layer ends: the handles
// left in the caller's scope are the same for 2 and for 6 layers, where
// holding them to the end of the forward kept dozens a layer. The
// gradients still flow (the embedding gets one).
func TestLayerTemporariesFreed(t *testing.T) {
	for _, preset := range []string{"tiny-llama", "tiny"} {
		live := map[int]int{}
		for _, layers := range []int{2, 6} {
			cfg, err := Preset(preset, 64)
			if err != nil {
				t.Fatal(err)
			}
			cfg.NumLayers = layers
			m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				p.T.SetRequiresGrad(true)
			}
			tensor.Tidy(func() {
				in := &Input{IDs: tensor.FromInt64s([]int64{3, 7, 1, 9, 4, 5, 2, 8}, 2, 4), Train: true}
				before := tensor.ScopeLive()
				h := m.Hidden(in)
				live[layers] = tensor.ScopeLive() - before
				tensor.ManualSeed(3)
				h.Mul(tensor.Randn(h.Shape(), tensor.Float32, tensor.CPU)).Sum().Backward()
				for _, p := range m.Params() {
					if g := p.T.Grad(); (p.Name == "model.embed_tokens.weight" || p.Name == "transformer.wte.weight") && (g == nil || g.Abs().Sum().Item() == 0) {
						t.Errorf("%s, %d layers: no gradient reached %s", preset, layers, p.Name)
					}
				}
			})
			m.Free()
		}
		if live[6] != live[2] {
			t.Errorf("%s: %d tensors left alive by a 2-layer forward, %d by a 6-layer one: each layer's intermediates should be freed as it ends", preset, live[2], live[6])
		}
	}
}
