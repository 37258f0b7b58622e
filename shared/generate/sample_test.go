package generate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// drawMany runs pick once on n copies of the row logits (with seen marking
// the given tokens) and returns the frequency of each token.
func drawMany(t *testing.T, logits []float32, seenIDs []int64, cfg Config, n int) []float64 {
	t.Helper()
	V := len(logits)
	rng := rand.New(rand.NewPCG(1, 2))
	u := make([]float64, n)
	for i := range u {
		u[i] = rng.Float64()
	}
	var got []int64
	tensor.Tidy(func() {
		rows := make([]float32, 0, n*V)
		for range n {
			rows = append(rows, logits...)
		}
		var seen *tensor.Tensor
		if len(seenIDs) > 0 {
			var idx []int64
			for range n {
				idx = append(idx, seenIDs...)
			}
			seen = tensor.Zeros([]int64{int64(n), int64(V)}, tensor.Bool).ScatterValue(1, tensor.FromInt64s(idx, int64(n), int64(len(seenIDs))), 1)
		}
		got = pick(tensor.FromFloat32s(rows, int64(n), int64(V)), seen, u, cfg)
	})
	freq := make([]float64, V)
	for _, id := range got {
		freq[id] += 1 / float64(n)
	}
	return freq
}

func softmax(xs []float64) []float64 {
	var z float64
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Exp(x)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// TestPickDistribution: the tensor sampler's frequencies over 200,000
// draws match the formula of each step (transformers' order: penalty,
// temperature, top-k, top-p) on crafted logits, within 0.005 (about 4
// standard errors); tokens outside the top-k support or the top-p set are
// never drawn.
func TestPickDistribution(t *testing.T) {
	logits := []float32{2, 1, 0, -1, -2}
	const n = 200000
	cases := []struct {
		name string
		cfg  Config
		seen []int64
		want []float64
	}{
		{"plain", Config{DoSample: true, Temperature: 1, TopP: 1}, nil, softmax([]float64{2, 1, 0, -1, -2})},
		{"temperature 0.5", Config{DoSample: true, Temperature: 0.5, TopP: 1}, nil, softmax([]float64{4, 2, 0, -2, -4})},
		{"top-k 2", Config{DoSample: true, Temperature: 1, TopK: 2, TopP: 1}, nil, append(softmax([]float64{2, 1}), 0, 0, 0)},
		// probabilities 0.636, 0.234, 0.086, 0.032, 0.012: top-p 0.8 keeps
		// the first two (0.636 < 0.8 <= 0.870), top-p 0.9 the first three
		{"top-p 0.8", Config{DoSample: true, Temperature: 1, TopP: 0.8}, nil, append(softmax([]float64{2, 1}), 0, 0, 0)},
		{"top-p 0.9", Config{DoSample: true, Temperature: 1, TopP: 0.9}, nil, append(softmax([]float64{2, 1, 0}), 0, 0)},
		// a first token above top_p is kept alone
		{"top-p 0.5", Config{DoSample: true, Temperature: 1, TopP: 0.5}, nil, []float64{1, 0, 0, 0, 0}},
		// top-k 4 renormalises over {2,1,0,-1} (0.644, 0.237, 0.087,
		// 0.032), then top-p 0.85 keeps the first two
		{"top-k 4 + top-p 0.85", Config{DoSample: true, Temperature: 1, TopK: 4, TopP: 0.85}, nil, append(softmax([]float64{2, 1}), 0, 0, 0)},
		// penalty 2 on tokens 0 (2 -> 1) and 3 (-1 -> -2), then T = 0.5
		{"penalty 2, T 0.5", Config{DoSample: true, Temperature: 0.5, TopP: 1, RepetitionPenalty: 2}, []int64{0, 3, 3}, softmax([]float64{2, 2, 0, -4, -4})},
	}
	for _, c := range cases {
		got := drawMany(t, logits, c.seen, c.cfg, n)
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 0.005 || c.want[i] == 0 && got[i] != 0 {
				t.Errorf("%s: P(%d) = %.4f, want %.4f", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// TestPickEdges: greedy takes the argmax of the penalised logits; tokens
// of zero probability (logit -inf) are never drawn, also with u at its
// extremes 0 and just below 1; the draws depend on u only.
func TestPickEdges(t *testing.T) {
	ninf := float32(math.Inf(-1))
	tensor.Tidy(func() {
		lg := tensor.FromFloat32s([]float32{3, 2.5, -1, ninf, 0, ninf, 1, ninf}, 2, 4)
		seen := tensor.Zeros([]int64{2, 4}, tensor.Bool).ScatterValue(1, tensor.FromInt64s([]int64{0, 2}, 2, 1), 1)
		// penalty 2 on token 0 of row 0 (3 -> 1.5 < 2.5: token 1) and on
		// token 2 of row 1 (1 -> 0.5, still above 0: token 2)
		if got := pick(lg, seen, nil, Config{RepetitionPenalty: 2}); got[0] != 1 || got[1] != 2 {
			t.Errorf("greedy with the penalty: %v, want [1 2]", got)
		}
		if got := pick(lg, nil, nil, Config{}); got[0] != 0 || got[1] != 2 {
			t.Errorf("greedy: %v, want [0 2]", got)
		}
		for _, u := range []float64{0, 1 - 1e-12, 0.5} {
			for _, cfg := range []Config{{DoSample: true, Temperature: 1, TopP: 1}, {DoSample: true, Temperature: 1, TopP: 0.999}, {DoSample: true, Temperature: 1, TopK: 4, TopP: 1}} {
				got := pick(lg, nil, []float64{u, u}, cfg)
				if got[0] == 3 || got[1] == 1 || got[1] == 3 {
					t.Errorf("u=%g %+v: drew %v, a token of probability 0", u, cfg, got)
				}
				again := pick(lg, nil, []float64{u, u}, cfg)
				if again[0] != got[0] || again[1] != got[1] {
					t.Errorf("u=%g: %v then %v", u, got, again)
				}
			}
		}
	})
}

// TestPickInverseCDF: with probabilities [0.1, 0.2, 0, 0.3, 0.4] (by hand:
// cumulative 0.1, 0.3, 0.3, 0.6, 1) a row takes the first token whose
// cumulative mass exceeds u, never the zero-probability token 2 whose
// cumulative mass ties its predecessor's.
func TestPickInverseCDF(t *testing.T) {
	p := []float64{0.1, 0.2, 0, 0.3, 0.4}
	lg := make([]float32, len(p))
	for i, v := range p {
		lg[i] = float32(math.Log(v))
	}
	us := []float64{0, 0.05, 0.29, 0.31, 0.59, 0.61, 0.99}
	want := []int64{0, 0, 1, 3, 3, 4, 4}
	tensor.Tidy(func() {
		rows := make([]float32, 0, len(us)*len(p))
		for range us {
			rows = append(rows, lg...)
		}
		got := pick(tensor.FromFloat32s(rows, int64(len(us)), int64(len(p))), nil, us, Config{DoSample: true, Temperature: 1, TopP: 1})
		for i := range us {
			if got[i] != want[i] {
				t.Errorf("u=%g: token %d, want %d", us[i], got[i], want[i])
			}
		}
	})
}
