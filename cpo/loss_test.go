package cpo

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// Hand-made summed completion log-probabilities for four pairs.
var (
	sc = []float64{-12.5, -3.25, -20.0, -0.4} // chosen
	sr = []float64{-14.0, -2.5, -19.0, -7.5}  // rejected
	nc = []float64{5, 2, 7, 1}                // chosen completion tokens
	nr = []float64{6, 3, 5, 4}                // rejected completion tokens
)

// t64 makes a float64 tensor (a leaf) from v.
func t64(v []float64) *tensor.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return tensor.FromBytes(b, []int64{int64(len(v))}, tensor.Float64)
}

func handLogps(c, r []float64) *Logps {
	return &Logps{Chosen: t64(c), Rejected: t64(r), ChosenLen: t64(nc), RejectedLen: t64(nr)}
}

func near(a, b, tol float64) bool  { return math.Abs(a-b) <= tol }
func logSigmoid(z float64) float64 { return -math.Log1p(math.Exp(-z)) }

// want is TRL's CPO loss written out in float64 from cpo_trainer.py
// (cpo_loss, get_batch_loss_metrics), independently of loss.go: it reads
// TRL's own expressions, (1 - p^-alpha)/alpha with p = exp(logp) included.
func want(c, r []float64, p Params) (loss, nll float64, rewC, rewR []float64) {
	avg := p.Type == "ipo" || p.Type == "simpo"
	var sum float64
	for i := range c {
		lc, lr := c[i], r[i]
		if avg {
			lc, lr = lc/nc[i], lr/nr[i]
		}
		rc, rr := lc, lr
		if p.Alpha != 0 {
			rc = (1 - math.Pow(math.Exp(lc), -p.Alpha)) / p.Alpha
			rr = (1 - math.Pow(math.Exp(lr), -p.Alpha)) / p.Alpha
		}
		rewC, rewR = append(rewC, p.Beta*rc), append(rewR, p.Beta*rr)
		z := rc - rr
		e := p.LabelSmoothing
		var l float64
		switch p.Type {
		case "sigmoid":
			l = -logSigmoid(p.Beta*z)*(1-e) - logSigmoid(-p.Beta*z)*e
		case "simpo":
			z -= p.Gamma / p.Beta
			l = -logSigmoid(p.Beta*z)*(1-e) - logSigmoid(-p.Beta*z)*e
		case "hinge":
			l = math.Max(0, 1-p.Beta*z)
		case "ipo":
			l = math.Pow(z-1/(2*p.Beta), 2)
		}
		sum += l
	}
	loss = sum / float64(len(c))
	if p.CPOAlpha != 0 {
		var s, n float64
		for i := range c {
			s -= c[i]
			n += nc[i]
		}
		nll = s / n
	}
	return loss + p.CPOAlpha*nll, nll, rewC, rewR
}

func TestLossTypesMatchFormulas(t *testing.T) {
	cases := []Params{
		{Type: "sigmoid", Beta: 0.1, CPOAlpha: 1},
		{Type: "sigmoid", Beta: 0.3, LabelSmoothing: 0.2, CPOAlpha: 0.5},
		{Type: "sigmoid", Beta: 0.1, CPOAlpha: 1, Alpha: 0.05},
		{Type: "hinge", Beta: 0.2, CPOAlpha: 1},
		{Type: "hinge", Beta: 0.05, CPOAlpha: 0},
		{Type: "ipo", Beta: 0.5, CPOAlpha: 1},
		{Type: "ipo", Beta: 0.1, CPOAlpha: 2, Alpha: -0.3},
		{Type: "simpo", Beta: 2, Gamma: 0.5, CPOAlpha: 0},
		{Type: "simpo", Beta: 2.5, Gamma: 1.2, CPOAlpha: 0, LabelSmoothing: 0.1},
		{Type: "simpo", Beta: 2.5, Gamma: 0.3, CPOAlpha: 0, Alpha: 0.25}, // AlphaPO
		{Type: "simpo", Beta: 1, Gamma: 0.5, CPOAlpha: 1, Alpha: 1},
	}
	seen := map[string]bool{}
	for _, p := range cases {
		seen[p.Type] = true
		wl, wn, wc, wr := want(sc, sr, p)
		tensor.Tidy(func() {
			got, err := Loss(handLogps(sc, sr), &p)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.Loss.ItemF64(); !near(g, wl, 1e-6) {
				t.Errorf("%+v: loss = %.9g, want %.9g", p, g, wl)
			}
			if g := got.NLL.ItemF64(); !near(g, wn, 1e-6) {
				t.Errorf("%+v: nll_loss = %.9g, want %.9g", p, g, wn)
			}
			gc, gr := got.ChosenReward.MulScalar(p.Beta).Float64s(), got.RejectedReward.MulScalar(p.Beta).Float64s()
			for i := range wc {
				if !near(gc[i], wc[i], 1e-6) || !near(gr[i], wr[i], 1e-6) {
					t.Errorf("%+v pair %d: rewards %.9g, %.9g, want %.9g, %.9g", p, i, gc[i], gr[i], wc[i], wr[i])
				}
			}
		})
	}
	for name := range losses {
		if !seen[name] {
			t.Errorf("loss_type %s has no test case", name)
		}
	}
}

// TestSimPOValue: one pair by hand. Averages -1 and -2, beta 2, gamma 0.5:
// z = 1 - 0.25 = 0.75, loss = -log s(1.5) = log(1 + e^-1.5).
func TestSimPOValue(t *testing.T) {
	tensor.Tidy(func() {
		x := &Logps{Chosen: t64([]float64{-3}), Rejected: t64([]float64{-8}), ChosenLen: t64([]float64{3}), RejectedLen: t64([]float64{4})}
		terms, err := Loss(x, &Params{Type: "simpo", Beta: 2, Gamma: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		got := terms.Loss.ItemF64()
		if w := math.Log1p(math.Exp(-1.5)); !near(got, w, 1e-12) {
			t.Errorf("simpo = %.15g, want %.15g", got, w)
		}
	})
}

// TestAlphaPOLongCompletion: a summed log-prob of -200 underflows TRL's
// exp(logp) to 0 in float32; rl's reward stays finite (-expm1(200a)/a).
func TestAlphaPOLongCompletion(t *testing.T) {
	tensor.Tidy(func() {
		x := &Logps{Chosen: t64([]float64{-200}).ToDType(tensor.Float32), Rejected: t64([]float64{-210}).ToDType(tensor.Float32),
			ChosenLen: t64([]float64{50}).ToDType(tensor.Float32), RejectedLen: t64([]float64{50}).ToDType(tensor.Float32)}
		got, err := Loss(x, &Params{Type: "sigmoid", Beta: 0.1, CPOAlpha: 1, Alpha: 0.01})
		if err != nil {
			t.Fatal(err)
		}
		r := got.ChosenReward.ItemF64()
		if w := -math.Expm1(2) / 0.01; !near(r, w, 1e-3*math.Abs(w)) || math.IsInf(got.Loss.ItemF64(), 0) {
			t.Errorf("reward %g (want %g), loss %g: want finite", r, w, got.Loss.ItemF64())
		}
	})
}

// TestGradient compares autograd's gradient of the AlphaPO-shaped SimPO
// loss with the NLL term (the loss with the most parts) with respect to
// the summed log-probs with central differences of the float64 formula.
func TestGradient(t *testing.T) {
	const h = 1e-6
	for _, p := range []Params{
		{Type: "simpo", Beta: 2, Gamma: 0.5, CPOAlpha: 0.7, Alpha: 0.3, LabelSmoothing: 0.1},
		{Type: "sigmoid", Beta: 0.1, CPOAlpha: 1},
	} {
		tensor.Tidy(func() {
			x := handLogps(sc, sr)
			x.Chosen, x.Rejected = x.Chosen.Detach(), x.Rejected.Detach()
			x.Chosen.SetRequiresGrad(true)
			x.Rejected.SetRequiresGrad(true)
			terms, err := Loss(x, &p)
			if err != nil {
				t.Fatal(err)
			}
			terms.Loss.Backward()
			for side, g := range [][]float64{x.Chosen.Grad().Float64s(), x.Rejected.Grad().Float64s()} {
				for i := range g {
					c, r := append([]float64{}, sc...), append([]float64{}, sr...)
					v := [][]float64{c, r}[side]
					v[i] += h
					up, _, _, _ := want(c, r, p)
					v[i] -= 2 * h
					down, _, _, _ := want(c, r, p)
					if fd := (up - down) / (2 * h); !near(g[i], fd, 1e-7) {
						t.Errorf("%s side %d pair %d: grad %.9g, finite difference %.9g", p.Type, side, i, g[i], fd)
					}
				}
			}
		})
	}
}

// TestConfigErrors: bad settings are refused, each error naming its flag.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.LossType = "dpo" }, `loss_type "dpo"`},
		{func(c *Config) { c.LossType = "kto_pair" }, "kto_pair was removed"},
		{func(c *Config) { c.Beta = -0.1 }, "beta"},
		{func(c *Config) { c.Beta = 0 }, "beta"},
		{func(c *Config) { c.CPOAlpha = -1 }, "cpo_alpha"},
		{func(c *Config) { c.LabelSmoothing = 1 }, "label_smoothing"},
		{func(c *Config) { c.LabelSmoothing = -0.1 }, "label_smoothing"},
		{func(c *Config) { c.MaxLength = 1 }, "max_length"},
		{func(c *Config) { n := 0; c.MaxCompletionLength = &n }, "max_completion_length"},
		{func(c *Config) { c.SimPOGamma = math.NaN() }, "simpo_gamma"},
		{func(c *Config) { c.Alpha = math.Inf(1) }, "alpha"},
		{func(c *Config) { c.Model = "" }, "model_name_or_path"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.Model, c.Dataset = "m", "d"
		tc.set(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	c := DefaultConfig()
	c.Model, c.Dataset = "m", "d"
	for _, lt := range LossTypes() {
		c.LossType = lt
		if err := c.Validate(); err != nil {
			t.Errorf("loss_type %s: %v", lt, err)
		}
	}
	tensor.Tidy(func() {
		if _, err := Loss(handLogps(sc, sr), &Params{Type: "alphapo", Beta: 1}); err == nil || !strings.Contains(err.Error(), "loss_type") {
			t.Errorf("Loss with loss_type alphapo (unresolved): error %v, want one naming loss_type", err)
		}
	})
	c.LossType = "alphapo"
	c.resolve()
	if c.LossType != "simpo" || c.CPOAlpha != 0 {
		t.Errorf("alphapo resolves to loss_type %s, cpo_alpha %g; want simpo, 0 (TRL's CPOConfig.__post_init__)", c.LossType, c.CPOAlpha)
	}
}
