package dpo

import (
	"encoding/binary"
	"math"
	"testing"

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
	}
	for _, tc := range cases {
		tensor.Tidy(func() {
			got, err := Loss([]string{tc.name}, []float64{1}, handLogps(pc, pr), &Params{Beta: beta, LabelSmoothing: tc.ls})
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
