package grpo

import (
	"math"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

func init() { tensor.SetNumThreads(0) }

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol
}

// TestAdvantagesByHand: group z-scores with Bessel's std + 1e-4, batch
// std, no scaling, weights, and unscorable rows (every reward NaN) at 0.
func TestAdvantagesByHand(t *testing.T) {
	nan := math.NaN()
	// two functions, weights 1 and 0.5; groups of 3
	per := [][]float64{{1, 2}, {0, nan}, {3, 0}, {2, 2}, {2, 2}, {nan, nan}}
	w := []float64{1, 0.5}
	R := []float64{2, 0, 3, 3, 3, nan}
	// group 1: mean 5/3, std sqrt(((1/3)^2+(5/3)^2+(4/3)^2)/2)
	m1 := 5.0 / 3
	s1 := math.Sqrt((1.0/9 + 25.0/9 + 16.0/9) / 2)
	// group 2: rows 3 and 4 scorable, mean 3, std 0
	// batch: 2,0,3,3,3 mean 11/5
	mb := 11.0 / 5
	var ss float64
	for _, v := range R[:5] {
		ss += (v - mb) * (v - mb)
	}
	sb := math.Sqrt(ss / 4)
	cases := []struct {
		scale string
		want  []float64
		zero  []bool
	}{
		{"group", []float64{(2 - m1) / (s1 + 1e-4), (0 - m1) / (s1 + 1e-4), (3 - m1) / (s1 + 1e-4), 0, 0, 0}, []bool{false, false, false, true, true, true}},
		{"batch", []float64{(2 - m1) / (sb + 1e-4), (0 - m1) / (sb + 1e-4), (3 - m1) / (sb + 1e-4), 0, 0, 0}, []bool{false, false, false, false, false, false}},
		{"none", []float64{2 - m1, 0 - m1, 3 - m1, 0, 0, 0}, []bool{false, false, false, true, true, true}},
	}
	for _, c := range cases {
		adv, rew, zero := Advantages(per, w, 3, c.scale)
		for i := range adv {
			if !near(adv[i], c.want[i], 1e-9) {
				t.Errorf("%s: A[%d] = %g, want %g", c.scale, i, adv[i], c.want[i])
			}
			if !near(rew[i], R[i], 1e-12) {
				t.Errorf("%s: R[%d] = %g, want %g", c.scale, i, rew[i], R[i])
			}
			if zero[i] != c.zero[i] {
				t.Errorf("%s: zero std[%d] = %v, want %v", c.scale, i, zero[i], c.zero[i])
			}
		}
	}
}

// refLoss is an independent float64 computation of TRL's _compute_loss
// for one micro-batch, token by token.
func refLoss(logp, old, ref [][]float64, adv []float64, mask [][]float64, p LossParams) (loss float64, st LossStats) {
	B, T := len(logp), len(logp[0])
	perTok := make([][]float64, B)
	coef := make([][]float64, B)
	var klSum, mSum float64
	for i := 0; i < B; i++ {
		perTok[i] = make([]float64, T)
		coef[i] = make([]float64, T)
		var seqLR, seqM float64
		for j := 0; j < T; j++ {
			seqLR += (logp[i][j] - old[i][j]) * mask[i][j]
			seqM += mask[i][j]
		}
		for j := 0; j < T; j++ {
			lr := logp[i][j] - old[i][j]
			if p.Level == "sequence" {
				lr = seqLR / math.Max(seqM, 1)
			}
			c1 := math.Exp(lr)
			coef[i][j] = c1
			c2 := math.Min(math.Max(c1, 1-p.EpsLow), 1+p.EpsHigh)
			if p.Delta != nil {
				c1 = math.Min(c1, *p.Delta)
			}
			l := -math.Min(c1*adv[i], c2*adv[i])
			if p.Beta != 0 {
				d := ref[i][j] - logp[i][j]
				kl := math.Exp(d) - d - 1
				l += p.Beta * kl
				klSum += kl * mask[i][j]
			}
			perTok[i][j] = l
			mSum += mask[i][j]
		}
	}
	var sum float64
	for i := range perTok {
		for j := range perTok[i] {
			sum += perTok[i][j] * mask[i][j]
		}
	}
	gas := float64(p.GAS)
	switch p.LossType {
	case "grpo":
		for i := range perTok {
			var s, m float64
			for j := range perTok[i] {
				s += perTok[i][j] * mask[i][j]
				m += mask[i][j]
			}
			loss += s / math.Max(m, 1)
		}
		loss /= float64(B)
	case "bnpo":
		loss = sum / math.Max(mSum, 1)
	case "dr_grpo":
		loss = sum / float64(B*p.MaxCompletionLength)
	case "dapo":
		loss = sum / p.NumItems
		gas = 1
	}
	st.PolicyLoss = loss
	st.KL = klSum / mSum
	// clip metrics
	var low, high, n float64
	st.ClipLowMin, st.ClipHighMax = math.NaN(), math.NaN()
	for i := 0; i < B; i++ {
		var sl, sh, sm float64
		for j := 0; j < T; j++ {
			l := b2f(coef[i][j] < 1-p.EpsLow && adv[i] < 0)
			h := b2f(coef[i][j] > 1+p.EpsHigh && adv[i] > 0)
			if p.Level == "sequence" { // one value per sequence, not masked
				if j == 0 {
					low, high, n = low+l, high+h, n+1
					sl, sh, sm = l, h, 1
				}
				continue
			}
			low += l * mask[i][j]
			high += h * mask[i][j]
			n += mask[i][j]
			sl, sh, sm = sl+l*mask[i][j], sh+h*mask[i][j], sm+mask[i][j]
		}
		if sm > 0 {
			if math.IsNaN(st.ClipLowMin) || sl/sm < st.ClipLowMin {
				st.ClipLowMin = sl / sm
			}
			if math.IsNaN(st.ClipHighMax) || sh/sm > st.ClipHighMax {
				st.ClipHighMax = sh / sm
			}
		}
	}
	st.ClipLowMean, st.ClipHighMean, st.ClipRegionMean = low/n, high/n, (low+high)/n
	return loss / gas, st
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func tensorOf(x [][]float64) *tensor.Tensor {
	var v []float32
	for _, r := range x {
		for _, e := range r {
			v = append(v, float32(e))
		}
	}
	return tensor.FromFloat32s(v, int64(len(x)), int64(len(x[0]))).ToDType(tensor.Float64)
}

// TestLossAgainstFloat64: every loss_type at token and sequence level,
// with and without the KL and delta, equals the float64 computation
// (1e-6), and so do the clip metrics; the gradient flows to logp.
func TestLossAgainstFloat64(t *testing.T) {
	// crafted so that some ratios fall below 1-eps and some above 1+eps_high
	logp := [][]float64{{-1.0, -0.5, -2.0, -0.3}, {-0.2, -1.5, -0.9, -4.0}, {-0.7, -0.7, -0.1, -1.1}}
	old := [][]float64{{-1.5, -0.4, -1.2, -0.3}, {-0.9, -1.0, -0.9, -0.2}, {-0.7, -0.2, -0.8, -1.1}}
	ref := [][]float64{{-1.1, -0.6, -1.9, -0.5}, {-0.3, -1.2, -1.0, -3.0}, {-0.6, -0.9, -0.2, -1.0}}
	mask := [][]float64{{1, 1, 1, 0}, {1, 1, 1, 1}, {1, 1, 0, 0}}
	adv := []float64{1.3, -0.8, 0.5}
	delta := 1.5
	for _, lt := range LossTypes {
		for _, level := range []string{"token", "sequence"} {
			for _, v := range []struct {
				beta  float64
				delta *float64
			}{{0, nil}, {0.04, nil}, {0.04, &delta}} {
				p := LossParams{LossType: lt, Level: level, EpsLow: 0.2, EpsHigh: 0.28, Delta: v.delta, Beta: v.beta,
					MaxCompletionLength: 6, NumItems: 17, GAS: 2}
				name := lt + "/" + level
				if v.beta != 0 {
					name += "/kl"
				}
				if v.delta != nil {
					name += "/delta"
				}
				want, wst := refLoss(logp, old, ref, adv, mask, p)
				tensor.Tidy(func() {
					lp := tensorOf(logp)
					lp.SetRequiresGrad(true)
					a := make([][]float64, len(adv))
					for i := range adv {
						a[i] = []float64{adv[i]}
					}
					loss, st := Loss(lp, tensorOf(old), tensorOf(ref), tensorOf(a), tensorOf(mask), p)
					if got := loss.ItemF64(); !near(got, want, 1e-6) {
						t.Errorf("%s: loss %.9f, want %.9f", name, got, want)
					}
					for _, c := range []struct {
						k         string
						got, want float64
					}{{"policy_loss", st.PolicyLoss, wst.PolicyLoss}, {"low_mean", st.ClipLowMean, wst.ClipLowMean}, {"high_mean", st.ClipHighMean, wst.ClipHighMean},
						{"region_mean", st.ClipRegionMean, wst.ClipRegionMean}, {"low_min", st.ClipLowMin, wst.ClipLowMin}, {"high_max", st.ClipHighMax, wst.ClipHighMax}} {
						if !near(c.got, c.want, 1e-6) {
							t.Errorf("%s: %s %g, want %g", name, c.k, c.got, c.want)
						}
					}
					if v.beta != 0 && !near(st.KL, wst.KL, 1e-6) {
						t.Errorf("%s: kl %g, want %g", name, st.KL, wst.KL)
					}
					loss.Backward()
					if g := lp.Grad(); g == nil || g.Abs().Sum().ItemF64() == 0 {
						t.Errorf("%s: no gradient reaches the log-probs", name)
					}
				})
			}
		}
	}
}

// TestClipMetricsByHand: token-level ratios set to exp(log 1.5), exp(log
// 0.5) and 1: with A > 0 only the high one counts as clipped, with A < 0
// only the low one.
func TestClipMetricsByHand(t *testing.T) {
	l15, l05 := math.Log(1.5), math.Log(0.5)
	logp := [][]float64{{l15, l05, 0}, {l15, l05, 0}}
	old := [][]float64{{0, 0, 0}, {0, 0, 0}}
	mask := [][]float64{{1, 1, 1}, {1, 1, 0}}
	p := LossParams{LossType: "bnpo", Level: "token", EpsLow: 0.2, EpsHigh: 0.2, GAS: 1}
	tensor.Tidy(func() {
		_, st := Loss(tensorOf(logp), tensorOf(old), nil, tensorOf([][]float64{{1}, {-1}}), tensorOf(mask), p)
		// row 0 (A>0): high-clipped 1 of 3; row 1 (A<0): low-clipped 1 of 2; 5 tokens
		want := map[string][2]float64{
			"low_mean": {st.ClipLowMean, 1.0 / 5}, "high_mean": {st.ClipHighMean, 1.0 / 5}, "region_mean": {st.ClipRegionMean, 2.0 / 5},
			"low_min": {st.ClipLowMin, 0}, "high_max": {st.ClipHighMax, 1.0 / 3},
		}
		for k, v := range want {
			if !near(v[0], v[1], 1e-9) {
				t.Errorf("clip_ratio/%s = %g, want %g", k, v[0], v[1])
			}
		}
	})
	// old == nil: the ratio is 1 everywhere, the loss is -mean(A) for bnpo
	tensor.Tidy(func() {
		loss, st := Loss(tensorOf(logp), nil, nil, tensorOf([][]float64{{1}, {-1}}), tensorOf(mask), p)
		if got, want := loss.ItemF64(), -(3*1.0+2*-1.0)/5; !near(got, want, 1e-9) || st.ClipRegionMean != 0 {
			t.Errorf("detached old: loss %g region %g, want %g 0", got, st.ClipRegionMean, want)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestConfigErrors: TRL's refusals, each naming the option.
func TestConfigErrors(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Model, c.Dataset, c.RewardFuncs = "m", "d", []string{"builtin:length"}
		return c
	}
	if c := base(); c.Validate() != nil {
		t.Fatalf("defaults: %v", c.Validate())
	}
	cases := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"one generation", func(c *Config) { c.NumGenerations = 1; c.PerDeviceTrainBatchSize = 1 }, "num_generations: GRPO requires at least 2 generations"},
		{"indivisible", func(c *Config) { c.NumGenerations = 3 }, "generation_batch_size (8) must be divisible by num_generations (3)"},
		{"gen batch vs batch", func(c *Config) { c.GenerationBatchSize = ptr(12) }, "generation_batch_size (12) must be divisible by the global batch size"},
		{"both", func(c *Config) { c.GenerationBatchSize = ptr(16); c.StepsPerGeneration = ptr(2) }, "can not be both configured"},
		{"loss type", func(c *Config) { c.LossType = "ppo" }, `loss_type "ppo"`},
		{"level", func(c *Config) { c.ImportanceSamplingLevel = "seq" }, `importance_sampling_level "seq"`},
		{"scale", func(c *Config) { c.ScaleRewards = "yes" }, `scale_rewards "yes"`},
		{"weights", func(c *Config) { c.RewardWeights = []float64{1, 2} }, "reward_weights has 2 values but reward_funcs names 1"},
		{"no reward", func(c *Config) { c.RewardFuncs = nil }, "reward_funcs must name"},
		{"delta", func(c *Config) { c.Delta = ptr(1.1) }, "delta (1.1) must be greater than 1 + epsilon_high"},
		{"temperature", func(c *Config) { c.Temperature = 0 }, "temperature"},
	}
	for _, c := range cases {
		cfg := base()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	// derived as TRL: steps_per_generation = GAS; generation_batch_size = bs * it
	c := base()
	c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps = 4, 3
	if gb, spg, err := c.Derived(1); err != nil || gb != 12 || spg != 3 {
		t.Errorf("Derived = %d %d %v, want 12 3", gb, spg, err)
	}
	c.GenerationBatchSize = ptr(16)
	if gb, spg, err := c.Derived(1); err != nil || gb != 16 || spg != 4 {
		t.Errorf("Derived(generation_batch_size 16) = %d %d %v, want 16 4", gb, spg, err)
	}
}
