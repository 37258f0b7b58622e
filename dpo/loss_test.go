package dpo

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
)

// Hand-made log-probabilities for three pairs.
var (
	pc = []float64{-12.5, -3.25, -20.0} // policy, chosen (summed)
	pr = []float64{-14.0, -2.5, -19.0}  // policy, rejected
	rc = []float64{-13.0, -3.0, -21.5}  // reference, chosen
	rr = []float64{-13.5, -3.5, -18.0}  // reference, rejected
	nc = []float64{5, 2, 7}             // chosen completion tokens
	nr = []float64{6, 3, 5}             // rejected completion tokens
)

// t64 makes a float64 tensor (a leaf) from v.
func t64(v []float64) *tensor.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return tensor.FromBytes(b, []int64{int64(len(v))}, tensor.Float64)
}

func handLogps(chosen, rejected []float64) *Logps {
	return &Logps{Chosen: t64(chosen), Rejected: t64(rejected), RefChosen: t64(rc), RefRejected: t64(rr), ChosenLen: t64(nc), RejectedLen: t64(nr)}
}

// Expected values, written out from the papers / TRL in plain float64.
func sigmoid(z float64) float64    { return 1 / (1 + math.Exp(-z)) }
func logSigmoid(z float64) float64 { return -math.Log1p(math.Exp(-z)) }

func mean(f func(i int) float64) float64 {
	var s float64
	for i := range pc {
		s += f(i)
	}
	return s / float64(len(pc))
}

// per-pair quantities of the formulas
func cr(i int) float64            { return pc[i] - rc[i] }             // chosen log-ratio
func rj(i int) float64            { return pr[i] - rr[i] }             // rejected log-ratio
func dl(i int) float64            { return cr(i) - rj(i) }             // margin of log-ratios
func nd(i int) float64            { return cr(i)/nc[i] - rj(i)/nr[i] } // length-normalised margin
func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestLossTypesMatchFormulas(t *testing.T) {
	const beta = 0.3
	cases := []struct {
		name string
		ls   float64
		want float64
	}{
		{"sigmoid", 0, mean(func(i int) float64 { return -logSigmoid(beta * dl(i)) })},
		{"hinge", 0, mean(func(i int) float64 { return math.Max(0, 1-beta*dl(i)) })},
		{"ipo", 0, mean(func(i int) float64 { return math.Pow(nd(i)-1/(2*beta), 2) })},
		{"robust", 0.2, mean(func(i int) float64 {
			e := 0.2
			return (-(1-e)*logSigmoid(beta*dl(i)) + e*logSigmoid(-beta*dl(i))) / (1 - 2*e)
		})},
		{"exo_pair", 0.1, mean(func(i int) float64 {
			e, z := 0.1, beta*dl(i)
			return sigmoid(z)*(logSigmoid(z)-math.Log(1-e)) + sigmoid(-z)*(logSigmoid(-z)-math.Log(e))
		})},
		{"sppo_hard", 0, mean(func(i int) float64 {
			return math.Pow(cr(i)-0.5/beta, 2) + math.Pow(rj(i)+0.5/beta, 2)
		})},
		{"nca_pair", 0, mean(func(i int) float64 {
			return -logSigmoid(beta*cr(i)) - 0.5*logSigmoid(-beta*cr(i)) - 0.5*logSigmoid(-beta*rj(i))
		})},
		{"apo_zero", 0, mean(func(i int) float64 { return 1 - sigmoid(beta*cr(i)) + sigmoid(beta*rj(i)) })},
		{"apo_down", 0, mean(func(i int) float64 { return sigmoid(beta*cr(i)) + 1 - sigmoid(beta*dl(i)) })},
		{"sigmoid_norm", 0, mean(func(i int) float64 { return -logSigmoid(beta * nd(i)) })},
		{"sft", 0, -(pc[0] + pc[1] + pc[2]) / (nc[0] + nc[1] + nc[2])},
		// bco_pair as TRL since #3906: no running baseline
		{"bco_pair", 0, mean(func(i int) float64 { return -logSigmoid(beta*cr(i)) - logSigmoid(-beta*rj(i)) })},
		// aot: sorted policy margins minus sorted reference margins
		{"aot", 0.1, aot(0.1, beta, func(i int) float64 { return pc[i] - pr[i] }, func(i int) float64 { return rc[i] - rr[i] })},
		{"aot", 0, aot(0, beta, func(i int) float64 { return pc[i] - pr[i] }, func(i int) float64 { return rc[i] - rr[i] })},
		// aot_unpaired: sorted chosen log-ratios minus sorted rejected ones
		{"aot_unpaired", 0.2, aot(0.2, beta, cr, rj)},
		// discopop, tau 0.05 (Eq. 5 of arXiv:2406.08414, as TRL)
		{"discopop", 0, mean(func(i int) float64 {
			z := beta * dl(i)
			m := sigmoid(z / 0.05)
			return -logSigmoid(z)*(1-m) + math.Exp(-z)*m
		})},
	}
	for _, tc := range cases {
		tensor.Tidy(func() {
			got, err := Loss([]string{tc.name}, []float64{1}, handLogps(pc, pr), &Params{Beta: beta, LabelSmoothing: tc.ls, DiscopopTau: 0.05})
			if err != nil {
				t.Fatal(err)
			}
			if g := got.ItemF64(); !near(g, tc.want, 1e-6) {
				t.Errorf("%s (label_smoothing %g) = %.9g, want %.9g", tc.name, tc.ls, g, tc.want)
			}
		})
	}
	// Every loss in the table is covered.
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.name] = true
	}
	for _, name := range LossTypes() {
		if !seen[name] {
			t.Errorf("loss_type %s has no test case", name)
		}
	}
}

// aot is the mean label-smoothed sigmoid loss of sort(a) - sort(b), a
// and b per pair, as TRL's aot and aot_unpaired.
func aot(e, beta float64, a, b func(i int) float64) float64 {
	var as, bs []float64
	for i := range pc {
		as, bs = append(as, a(i)), append(bs, b(i))
	}
	slices.Sort(as)
	slices.Sort(bs)
	var s float64
	for i := range as {
		z := beta * (as[i] - bs[i])
		s += -logSigmoid(z)*(1-e) - logSigmoid(-z)*e
	}
	return s / float64(len(as))
}

// TestFDivergences: each f_divergence_type's scores, written out from
// TRL's f'(u) (u = pi/ref, constants dropped), through the losses that read
// scores (sigmoid, ipo, bco_pair, apo_down's margin) and those that read the
// plain log-ratios (apo_zero, aot_unpaired).
func TestFDivergences(t *testing.T) {
	const beta = 0.4
	type f func(lr float64) float64
	divs := []struct {
		name  string
		coef  float64
		score f
	}{
		{"reverse_kl", 0.5, func(u float64) float64 { return u }},
		{"forward_kl", 0.5, func(u float64) float64 { return -math.Exp(-u) }},
		{"js_divergence", 0.5, func(u float64) float64 { return logSigmoid(u) }},
		{"alpha_divergence", 0.5, func(u float64) float64 { return math.Exp(-0.5*u) / -0.5 }},
		{"alpha_divergence", 1.7, func(u float64) float64 { return math.Exp(0.7*u) / 0.7 }},
		{"alpha_divergence", 1 + 1e-8, func(u float64) float64 { return u }}, // the limit: reverse_kl
	}
	for _, d := range divs {
		sc := func(i int) float64 { return d.score(cr(i)) }
		sr := func(i int) float64 { return d.score(rj(i)) }
		sd := func(i int) float64 { return sc(i) - sr(i) }
		cases := []struct {
			name string
			want float64
		}{
			{"sigmoid", mean(func(i int) float64 { return -logSigmoid(beta * sd(i)) })},
			{"ipo", mean(func(i int) float64 { return math.Pow(sc(i)/nc[i]-sr(i)/nr[i]-1/(2*beta), 2) })},
			{"bco_pair", mean(func(i int) float64 { return -logSigmoid(beta*sc(i)) - logSigmoid(-beta*sr(i)) })},
			{"apo_down", mean(func(i int) float64 { return sigmoid(beta*cr(i)) + 1 - sigmoid(beta*sd(i)) })},
			{"apo_zero", mean(func(i int) float64 { return 1 - sigmoid(beta*cr(i)) + sigmoid(beta*rj(i)) })},
			{"aot_unpaired", aot(0, beta, cr, rj)},
		}
		for _, tc := range cases {
			tensor.Tidy(func() {
				got, err := Loss([]string{tc.name}, []float64{1}, handLogps(pc, pr), &Params{Beta: beta, FDivergence: d.name, FAlphaCoef: d.coef})
				if err != nil {
					t.Fatal(err)
				}
				if g := got.ItemF64(); !near(g, tc.want, 1e-6) {
					t.Errorf("%s with f_divergence_type %s (coef %g) = %.9g, want %.9g", tc.name, d.name, d.coef, g, tc.want)
				}
			})
		}
	}
}

// TestWPOWeighted: use_weighting multiplies each pair's loss by its
// weight before the mean (sft's batch scalar too).
func TestWPOWeighted(t *testing.T) {
	const beta = 0.2
	w := []float64{0.5, 0.01, 0.9}
	want := mean(func(i int) float64 { return -w[i] * logSigmoid(beta*dl(i)) }) +
		0.3*mean(func(i int) float64 { return w[i] })*(-(pc[0]+pc[1]+pc[2])/(nc[0]+nc[1]+nc[2]))
	tensor.Tidy(func() {
		x := handLogps(pc, pr)
		x.Weights = t64(w)
		got, err := Loss([]string{"sigmoid", "sft"}, []float64{1, 0.3}, x, &Params{Beta: beta})
		if err != nil {
			t.Fatal(err)
		}
		if g := got.ItemF64(); !near(g, want, 1e-6) {
			t.Errorf("weighted sigmoid + 0.3 sft = %.9g, want %.9g", g, want)
		}
	})
}

// TestWeightedSum: RPO is sigmoid + w*sft.
func TestWeightedSum(t *testing.T) {
	const beta, w = 0.1, 0.25
	want := mean(func(i int) float64 { return -logSigmoid(beta * dl(i)) }) + w*(-(pc[0]+pc[1]+pc[2])/(nc[0]+nc[1]+nc[2]))
	tensor.Tidy(func() {
		got, err := Loss([]string{"sigmoid", "sft"}, []float64{1, w}, handLogps(pc, pr), &Params{Beta: beta})
		if err != nil {
			t.Fatal(err)
		}
		if g := got.ItemF64(); !near(g, want, 1e-6) {
			t.Errorf("sigmoid + %g*sft = %.9g, want %.9g", w, g, want)
		}
	})
}

// TestSigmoidGradient compares autograd's gradient of the sigmoid loss
// with respect to the policy log-probs with central differences and with
// the closed form -beta*s(-beta*d)/B (chosen; + for rejected).
func TestSigmoidGradient(t *testing.T) {
	const beta, h = 0.7, 1e-5
	loss := func(c, r []float64) float64 {
		var v float64
		tensor.Tidy(func() {
			tensor.NoGrad(func() {
				l, _ := Loss([]string{"sigmoid"}, []float64{1}, handLogps(c, r), &Params{Beta: beta})
				v = l.ItemF64()
			})
		})
		return v
	}
	tensor.Tidy(func() {
		x := handLogps(pc, pr)
		x.Chosen = x.Chosen.Detach()
		x.Rejected = x.Rejected.Detach()
		x.Chosen.SetRequiresGrad(true)
		x.Rejected.SetRequiresGrad(true)
		l, err := Loss([]string{"sigmoid"}, []float64{1}, x, &Params{Beta: beta})
		if err != nil {
			t.Fatal(err)
		}
		l.Backward()
		for side, g := range [][]float64{x.Chosen.Grad().Float64s(), x.Rejected.Grad().Float64s()} {
			for i := range g {
				c, r := append([]float64{}, pc...), append([]float64{}, pr...)
				v := [][]float64{c, r}[side]
				v[i] += h
				up := loss(c, r)
				v[i] -= 2 * h
				down := loss(c, r)
				fd := (up - down) / (2 * h)
				closed := -beta * sigmoid(-beta*dl(i)) / 3
				if side == 1 {
					closed = -closed
				}
				if !near(g[i], fd, 1e-6) || !near(g[i], closed, 1e-9) {
					t.Errorf("side %d pair %d: grad %.9g, finite difference %.9g, closed form %.9g", side, i, g[i], fd, closed)
				}
			}
		}
	})
}

// ldBatch is one pair: prompt [1 2], chosen completion [3 4], rejected
// [5 6 7 8], so T = 6 and the rejected row has a two-token verbose tail.
func ldBatch() *preference.Batch {
	return preference.Collate([]preference.Pair{{
		Chosen: []int32{1, 2, 3, 4}, Rejected: []int32{1, 2, 5, 6, 7, 8}, ChosenStart: 2, RejectedStart: 2,
	}}, 0)
}

// TestLDAlpha: LD-DPO weighs the shared completion length by 1 and the
// longer completion's tail by ld_alpha (positions t predict token t+1).
func TestLDAlpha(t *testing.T) {
	const a = 0.3
	b := ldBatch()
	want := []float32{
		0, 1, 1, 0, 0, 0, // chosen: positions 1, 2 predict 3, 4
		0, 1, 1, a, a, 0, // rejected: 5, 6 shared; 7, 8 the tail
	}
	if got := b.LDWeights(a); !slices.Equal(got, want) {
		t.Errorf("LDWeights(%g) = %v, want %v", a, got, want)
	}
	per := []float32{0, -1, -2, 0, 0, 0, 0, -0.5, -1.5, -4, -8, 0}
	tensor.Tidy(func() {
		lp := preference.Logps{PerToken: tensor.FromFloat32s(per, 2, 6), Sum: tensor.FromFloat32s([]float32{-3, -14}, 2)}
		alpha := a
		got := ldSum(lp, b, &alpha).Float64s()
		if w := []float64{-3, -0.5 - 1.5 + a*(-4-8)}; !near(got[0], w[0], 1e-6) || !near(got[1], w[1], 1e-6) {
			t.Errorf("ld_alpha %g sums = %v, want %v", a, got, w)
		}
		if got := ldSum(lp, b, nil).Float64s(); got[0] != -3 || got[1] != -14 {
			t.Errorf("no ld_alpha: sums = %v, want the plain sums [-3 -14]", got)
		}
	})
}

// TestWPOWeights: WPO's w(x, y) from hand-made logits, in float64: the
// mean over completion positions of log p(target) - log sum_v p(v)^2.
func TestWPOWeights(t *testing.T) {
	b := ldBatch()
	const T, V = 6, 9
	logits := make([]float32, 2*T*V)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)*1.7) * 3)
	}
	var want [2]float64
	for r := range 2 {
		var s float64
		n := 0
		for t := range T {
			if b.Completion[r*T+t] == 0 {
				continue
			}
			z := logits[(r*T+t)*V : (r*T+t+1)*V]
			var lse, sq float64
			for _, v := range z {
				lse += math.Exp(float64(v))
			}
			lse = math.Log(lse)
			for _, v := range z {
				sq += math.Exp(2 * (float64(v) - lse))
			}
			target := b.IDs[r*T+t+1]
			s += float64(z[target]) - lse - math.Log(sq)
			n++
		}
		want[r] = math.Exp(s / float64(n))
	}
	tensor.Tidy(func() {
		x := tensor.FromFloat32s(logits, 2, T, V)
		lp := preference.CompletionLogps(x, b)
		got := WPOWeights(x, lp.PerToken, b).Float64s()
		for r := range 2 {
			if !near(got[r], want[r], 1e-6*math.Max(1, want[r])) {
				t.Errorf("row %d: WPO weight %.9g, want %.9g", r, got[r], want[r])
			}
		}
	})
}

// TestAOTSorts: on pairs whose margins sort in different orders (so the
// sorted matching is not the identity pairing's), aot and aot_unpaired
// match the sorted float64 formula and differ from the unsorted one.
func TestAOTSorts(t *testing.T) {
	const beta, e = 0.5, 0.1
	c := []float64{-5, -9, -2, -7} // policy chosen
	r := []float64{-6, -4, -8, -7} // policy rejected
	c0 := []float64{-4, -9, -5, -6}
	r0 := []float64{-5, -6, -3, -9}
	sorted := func(a, b []float64) (mean, unsorted float64) {
		as, bs := slices.Clone(a), slices.Clone(b)
		slices.Sort(as)
		slices.Sort(bs)
		l := func(z float64) float64 { return -logSigmoid(beta*z)*(1-e) - logSigmoid(-beta*z)*e }
		for i := range as {
			mean += l(as[i]-bs[i]) / float64(len(as))
			unsorted += l(a[i]-b[i]) / float64(len(as))
		}
		return mean, unsorted
	}
	var pm, rm, cl, rl []float64
	for i := range c {
		pm, rm = append(pm, c[i]-r[i]), append(rm, c0[i]-r0[i])
		cl, rl = append(cl, c[i]-c0[i]), append(rl, r[i]-r0[i])
	}
	for _, tc := range []struct {
		name string
		a, b []float64
	}{{"aot", pm, rm}, {"aot_unpaired", cl, rl}} {
		want, unsorted := sorted(tc.a, tc.b)
		if near(want, unsorted, 1e-3) {
			t.Fatalf("%s: fixture does not tell sorted (%g) from unsorted (%g)", tc.name, want, unsorted)
		}
		tensor.Tidy(func() {
			x := &Logps{Chosen: t64(c), Rejected: t64(r), RefChosen: t64(c0), RefRejected: t64(r0), ChosenLen: t64([]float64{1, 1, 1, 1}), RejectedLen: t64([]float64{1, 1, 1, 1})}
			got, err := Loss([]string{tc.name}, []float64{1}, x, &Params{Beta: beta, LabelSmoothing: e})
			if err != nil {
				t.Fatal(err)
			}
			if g := got.ItemF64(); !near(g, want, 1e-6) {
				t.Errorf("%s = %.9g, want %.9g (unsorted would be %.9g)", tc.name, g, want, unsorted)
			}
		})
	}
}

// TestConfigErrors: the new settings' bad values are refused, naming the flag.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.FDivergenceType = "kl" }, `f_divergence_type "kl"`},
		{func(c *Config) { c.UseWeighting, c.LossType = true, []string{"sigmoid", "aot"} }, "use_weighting"},
		{func(c *Config) { c.UseWeighting, c.LossType = true, []string{"aot_unpaired"} }, "use_weighting"},
		{func(c *Config) { a := 1.5; c.LdAlpha = &a }, "ld_alpha"},
		{func(c *Config) { a := -0.1; c.LdAlpha = &a }, "ld_alpha"},
		{func(c *Config) { c.DiscopopTau = 0 }, "discopop_tau"},
		{func(c *Config) { c.FAlphaDivergenceCoef = math.NaN() }, "f_alpha_divergence_coef"},
		{func(c *Config) { c.LossType = []string{"discopop", "aot_pair"} }, `loss_type "aot_pair"`},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.Model, c.Dataset = "m", "d"
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	c := DefaultConfig()
	c.Model, c.Dataset = "m", "d"
	a := 0.5
	c.LossType, c.UseWeighting, c.LdAlpha, c.FDivergenceType = []string{"discopop", "sigmoid_norm"}, true, &a, "alpha_divergence"
	if err := c.Validate(); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}
