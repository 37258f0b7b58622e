package sft

import (
	"math"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestChunkedNLLEqualsNLL: loss_type chunked_nll (the LM head on the target
// tokens only, in chunks) gives nll's loss, mean_token_accuracy, entropy
// and every gradient, on a batch of 2 x 300 tokens (more than two chunks)
// with prompt tokens and padding ignored.
func TestChunkedNLLEqualsNLL(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama"} {
		tensor.ManualSeed(3)
		cfg, _ := model.Preset(preset, 97)
		cfg.NumLayers = 1
		m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		var rows []Row
		for r := range 2 {
			n := 300 - 40*r // the second row is padded
			ids := make([]int32, n)
			loss := make([]bool, n)
			for i := range ids {
				ids[i] = int32((i*13 + r*5) % 97)
				loss[i] = i >= 20 // a prompt of 20 tokens
			}
			rows = append(rows, Rows([]Example{{IDs: ids, Loss: loss}}, false, 512)...)
		}
		b := Collate(rows, 0)
		run := func(unchunked bool) (float64, map[string]float64, map[string][]float32) {
			grads := map[string][]float32{}
			for _, p := range m.Trainable() {
				p.T.SetRequiresGrad(true)
				p.T.ZeroGrad()
			}
			acc := &metrics.Accumulator{}
			var loss float64
			tensor.Tidy(func() {
				l := (&Task{M: m, Unchunked: unchunked}).Loss(b, acc, false)
				loss = l.ItemF64()
				l.Backward()
				for _, p := range m.Trainable() {
					if g := p.T.Grad(); g != nil {
						grads[p.Name] = g.Float32s()
					}
				}
			})
			return loss, acc.Means(), grads
		}
		l0, m0, g0 := run(true)
		l1, m1, g1 := run(false)
		if math.Abs(l0-l1) > 1e-5*math.Abs(l0) || math.IsNaN(l1) {
			t.Errorf("%s: chunked_nll loss %.7g, nll %.7g", preset, l1, l0)
		}
		for _, k := range []string{"mean_token_accuracy", "entropy"} {
			if math.Abs(m0[k]-m1[k]) > 1e-5*math.Max(1, math.Abs(m0[k])) {
				t.Errorf("%s: chunked_nll %s %.7g, nll %.7g", preset, k, m1[k], m0[k])
			}
		}
		if len(g0) == 0 || len(g0) != len(g1) {
			t.Fatalf("%s: %d gradients chunked, %d not", preset, len(g1), len(g0))
		}
		for name, g := range g0 {
			worst, scale := 0.0, 0.0
			for i := range g {
				scale = math.Max(scale, math.Abs(float64(g[i])))
				worst = math.Max(worst, math.Abs(float64(g[i]-g1[name][i])))
			}
			if worst > 1e-5*math.Max(scale, 1e-6) {
				t.Errorf("%s: %s gradient differs by %.3g (max |grad| %.3g)", preset, name, worst, scale)
			}
		}
		m.Free()
	}
}
