package rloo

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

// TestRewardsAndBaselineByHand: weights, reward_clip_range, the KL
// penalty, the leave-one-out baseline (over scorable siblings only),
// normalisation, and unscorable rows at 0.
func TestRewardsAndBaselineByHand(t *testing.T) {
	nan := math.NaN()
	per := [][]float64{{1, 2}, {3, nan}, {-4, 0}, {nan, nan}, {2, 1}, {0, 0}}
	w := []float64{1, 0.5}
	kl := []float64{0.5, 1, 0, 0, 2, -1}
	// sums 2, 3, -4, NaN, 2.5, 0; clipped to [-1, 2.8]: 2, 2.8, -1, NaN, 2.5, 0; minus 0.1 kl
	R := Rewards(per, w, []float64{-1, 2.8}, 0.1, kl)
	wantR := []float64{2 - 0.05, 2.8 - 0.1, -1, nan, 2.5 - 0.2, 0 + 0.1}
	for i := range R {
		if !near(R[i], wantR[i], 1e-12) {
			t.Errorf("R[%d] = %g, want %g", i, R[i], wantR[i])
		}
	}
	// groups of 3: (1.95, 2.7, -1) and (NaN, 2.3, 0.1)
	wantA := []float64{
		1.95 - (2.7-1)/2, 2.7 - (1.95-1)/2, -1 - (1.95+2.7)/2,
		0, 2.3 - 0.1, 0.1 - 2.3,
	}
	adv, zero := Advantages(R, 3, false)
	for i := range adv {
		if !near(adv[i], wantA[i], 1e-12) {
			t.Errorf("A[%d] = %g, want %g", i, adv[i], wantA[i])
		}
	}
	if len(zero) != 2 || zero[0] || zero[1] {
		t.Errorf("zero std per group %v, want [false false]", zero)
	}
	// normalised over the 5 scorable advantages
	var m, ss float64
	sc := []float64{wantA[0], wantA[1], wantA[2], wantA[4], wantA[5]}
	for _, v := range sc {
		m += v / 5
	}
	for _, v := range sc {
		ss += (v - m) * (v - m)
	}
	sd := math.Sqrt(ss / 4)
	nadv, _ := Advantages(R, 3, true)
	for i, v := range []int{0, 1, 2, 4, 5} {
		if want := (sc[i] - m) / (sd + 1e-4); !near(nadv[v], want, 1e-12) {
			t.Errorf("normalised A[%d] = %g, want %g", v, nadv[v], want)
		}
	}
	if nadv[3] != 0 {
		t.Errorf("unscorable row: normalised A = %g, want 0", nadv[3])
	}
	// a group with one scorable completion: no baseline, advantage 0; equal rewards: zero std
	adv, zero = Advantages([]float64{1, nan, 2, 2}, 2, false)
	if adv[0] != 0 || adv[1] != 0 || adv[2] != 0 || !zero[1] {
		t.Errorf("single scorable / equal rewards: A %v zero %v", adv, zero)
	}
}

// TestLossAgainstFloat64: the sequence-level clipped loss and its clip
// metrics on crafted ratios (one below 1-eps with A < 0, one above 1+eps
// with A > 0, one inside), against a float64 computation.
func TestLossAgainstFloat64(t *testing.T) {
	logp := [][]float64{{-1.0, -0.5, -2.0}, {-0.2, -1.5, -0.9}, {-0.7, -0.7, -0.1}, {-0.3, -0.3, -0.3}}
	mask := [][]float64{{1, 1, 0}, {1, 1, 1}, {1, 1, 1}, {1, 0, 0}}
	// sequence sums: -1.5, -2.6, -1.5, -0.3; old sums set for ratios 0.5, 1.5, 1.1, 0.7
	seq := []float64{-1.5, -2.6, -1.5, -0.3}
	ratio := []float64{0.5, 1.5, 1.1, 0.7}
	adv := []float64{-1, 2, 0.5, 0.3}
	old := make([]float64, 4)
	for i := range old {
		old[i] = seq[i] - math.Log(ratio[i])
	}
	eps, epsHigh := 0.2, 0.28
	var want float64
	for i := range ratio {
		c2 := math.Min(math.Max(ratio[i], 1-eps), 1+epsHigh)
		want += -math.Min(ratio[i]*adv[i], c2*adv[i]) / 4
	}
	tensor.Tidy(func() {
		var lv, mv []float32
		for i := range logp {
			for j := range logp[i] {
				lv = append(lv, float32(logp[i][j]))
				mv = append(mv, float32(mask[i][j]))
			}
		}
		f64 := func(v []float64) *tensor.Tensor {
			f := make([]float32, len(v))
			for i := range v {
				f[i] = float32(v[i])
			}
			return tensor.FromFloat32s(f, int64(len(v))).ToDType(tensor.Float64)
		}
		lp := tensor.FromFloat32s(lv, 4, 3).ToDType(tensor.Float64)
		lp.SetRequiresGrad(true)
		loss, st := Loss(lp, tensor.FromFloat32s(mv, 4, 3).ToDType(tensor.Float64), f64(old), f64(adv), eps, epsHigh)
		if got := loss.ItemF64(); !near(got, want, 1e-6) {
			t.Errorf("loss %.9f, want %.9f", got, want)
		}
		// row 0 low-clipped (0.5 < 0.8, A<0); row 1 high-clipped (1.5 > 1.28, A>0);
		// row 3 has 0.7 < 0.8 but A > 0: not clipped
		for _, c := range []struct {
			k         string
			got, want float64
		}{{"low_mean", st.ClipLowMean, 0.25}, {"low_min", st.ClipLowMin, 0}, {"high_mean", st.ClipHighMean, 0.25}, {"high_max", st.ClipHighMax, 1}, {"region_mean", st.ClipRegionMean, 0.5}} {
			if !near(c.got, c.want, 1e-9) {
				t.Errorf("clip_ratio/%s = %g, want %g", c.k, c.got, c.want)
			}
		}
		loss.Backward()
		// d loss / d logp: only unclipped sequences, only masked-in tokens
		g := lp.Grad().Float64s()
		for j := 0; j < 3; j++ {
			if g[j] != 0 || g[3+j] != 0 {
				t.Errorf("clipped rows have gradient %v", g[:6])
				break
			}
		}
		if want := -ratio[2] * adv[2] / 4; !near(g[6], want, 1e-6) || g[11] != 0 {
			t.Errorf("grad %v, want %g at row 2 and 0 at row 3's padding", g, want)
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
		{"one generation", func(c *Config) { c.NumGenerations = 1; c.PerDeviceTrainBatchSize = 1 }, "num_generations: RLOO requires at least 2 generations"},
		{"indivisible", func(c *Config) { c.NumGenerations = 3 }, "generation_batch_size (8) must be divisible by num_generations (3)"},
		{"gen batch vs batch", func(c *Config) { c.GenerationBatchSize = ptr(12) }, "generation_batch_size (12) must be divisible by the global batch size"},
		{"both", func(c *Config) { c.GenerationBatchSize = ptr(16); c.StepsPerGeneration = ptr(2) }, "can not be both configured"},
		{"clip range", func(c *Config) { c.RewardClipRange = []float64{1} }, "reward_clip_range [1]: want two numbers"},
		{"clip order", func(c *Config) { c.RewardClipRange = []float64{2, 1} }, "min <= max"},
		{"weights", func(c *Config) { c.RewardWeights = []float64{1, 2} }, "reward_weights has 2 values but reward_funcs names 1"},
	}
	for _, c := range cases {
		cfg := base()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}
