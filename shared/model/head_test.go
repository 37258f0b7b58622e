package model

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// headRun computes TokenLogps of fixed hidden states (2, 300, H): more
// than two chunks of LMHeadChunk rows, the last one partial; every tenth
// target ignored. It backpropagates sum(logp * w) for fixed w and returns
// the outputs and the gradients of the hidden states and the head weight.
func headRun(t *testing.T, m *Model, chunked bool, temperature float64, autocast bool) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	w := m.arch.lmWeight(m)
	w.SetRequiresGrad(true)
	w.ZeroGrad()
	tensor.Tidy(func() {
		H, V := int64(m.Config.HiddenSize), w.Size(0)
		tensor.ManualSeed(5)
		h := tensor.Randn([]int64{2, 300, H}, tensor.Float32, tensor.CPU).Keep()
		defer h.Free()
		h.SetRequiresGrad(true)
		ys := make([]int64, 600)
		for i := range ys {
			ys[i] = int64(i*7) % V
			if i%10 == 3 {
				ys[i] = -100
			}
		}
		targets := tensor.FromInt64s(ys, 2, 300)
		coef := tensor.Randn([]int64{2, 300}, tensor.Float32, tensor.CPU)
		run := func() {
			var tok TokenLogps
			if chunked {
				tok = m.TokenLogps(h, targets, temperature)
			} else {
				tok = LogitsTokenLogps(m.Logits(h).DivScalar(temperature), targets)
			}
			tok.Logp.Mul(coef).Sum().Backward()
			out["logp"] = tok.Logp.Float32s()
			out["entropy"] = tok.Entropy.Float32s()
			out["logit_sum"] = tok.LogitSum.Float32s()
			out["argmax"] = tok.Argmax.ToDType(tensor.Float32).Float32s()
		}
		if autocast {
			tensor.Autocast(tensor.BFloat16, run)
		} else {
			run()
		}
		out["grad hidden"] = h.Grad().Float32s()
		out["grad weight"] = w.Grad().Float32s()
	})
	return out
}

// TestTokenLogpsChunked: the chunked LM head (TRL's chunked_nll) gives the
// log-probs, metrics and gradients (hidden states and head weight, tied to
// the embedding in GPT-2) of the whole logits to float32 rounding, with
// softcap and temperature, and under bfloat16 autocast.
func TestTokenLogpsChunked(t *testing.T) {
	for _, fam := range []string{"llama", "gpt2"} {
		m, err := Load(filepath.Join("testdata", "peft", fam, "base"), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			softcap, temperature float64
			autocast             bool
		}{{0, 1, false}, {30, 0.7, false}, {0, 1, true}} {
			m.Config.FinalLogitSoftcap = c.softcap
			name := fmt.Sprintf("%s softcap=%g temperature=%g autocast=%v", fam, c.softcap, c.temperature, c.autocast)
			want := headRun(t, m, false, c.temperature, c.autocast)
			got := headRun(t, m, true, c.temperature, c.autocast)
			// bfloat16 matmuls round differently by chunk: looser there
			tol := map[bool]float64{false: 1e-5, true: 2e-2}[c.autocast]
			for k, wv := range want {
				gv := got[k]
				if len(gv) != len(wv) || len(wv) == 0 {
					t.Fatalf("%s: %s has %d values, want %d", name, k, len(gv), len(wv))
				}
				worst, scale := 0.0, 0.0
				for i := range wv {
					scale = math.Max(scale, math.Abs(float64(wv[i])))
				}
				for i := range wv {
					worst = math.Max(worst, math.Abs(float64(gv[i]-wv[i])))
				}
				if k == "argmax" {
					if worst != 0 && !c.autocast {
						t.Errorf("%s: argmax differs", name)
					}
					continue
				}
				if worst > tol*math.Max(scale, 1e-3) {
					t.Errorf("%s: %s differs by %.3g (max |value| %.3g)", name, k, worst, scale)
				}
			}
			// ignored targets get 0 and no gradient
			if got["logp"][3] != 0 {
				t.Errorf("%s: ignored target's logp %g, want 0", name, got["logp"][3])
			}
		}
		m.Free()
	}
}
