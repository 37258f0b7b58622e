package kto

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// Hand-made summed log-probabilities for five rows, three desirable.
var (
	lab  = []bool{true, false, true, false, true}
	pol  = []float64{-12.5, -3.25, -20.0, -7.0, -4.5} // policy, rows
	ref  = []float64{-13.0, -3.0, -21.5, -6.0, -4.75} // reference, rows
	klp  = []float64{-15.0, -9.0, -11.0, -8.0, -6.0}  // policy, KL rows
	klr  = []float64{-14.0, -9.5, -10.0, -8.25, -5.5} // reference, KL rows
	klp2 = []float64{-13.0, -8.0, -10.0, -7.0, -5.0}  // KL rows whose mean log-ratio is positive
)

// t64 makes a float64 tensor (a leaf) from v.
func t64(v []float64) *tensor.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return tensor.FromBytes(b, []int64{int64(len(v))}, tensor.Float64)
}

func sigmoid(z float64) float64   { return 1 / (1 + math.Exp(-z)) }
func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// zRef is z = max(0, mean(klp - klr)) in float64.
func zRef(kp, kr []float64) float64 {
	var s float64
	for i := range kp {
		s += kp[i] - kr[i]
	}
	return math.Max(0, s/float64(len(kp)))
}

// lossRef is TRL's loss written out in float64: the per-class losses
// concatenated (desirable first), weighted, averaged.
func lossRef(lossType string, p []float64, z, beta, wd, wu float64) float64 {
	var des, und []float64
	for i := range p {
		r := p[i] - ref[i]
		switch {
		case lossType == "kto" && lab[i]:
			des = append(des, wd*(1-sigmoid(beta*(r-z))))
		case lossType == "kto":
			und = append(und, wu*(1-sigmoid(beta*(z-r))))
		case lab[i]:
			des = append(des, wd*(1-sigmoid(beta*r)))
		default:
			und = append(und, wu*sigmoid(beta*r))
		}
	}
	var s float64
	all := append(des, und...)
	for _, v := range all {
		s += v
	}
	return s / float64(len(all))
}

func hand(p, kp []float64) *Logps {
	return &Logps{Policy: t64(p), Ref: t64(ref), KL: t64(kp), RefKL: t64(klr), Desirable: lab}
}

type lossCase struct {
	lossType       string
	kl             []float64
	beta, wd, wu   float64
	wantZ          float64
	wantZPositive  bool // fixture checks: the case exercises z > 0
	wantZIsClamped bool // or the clamp at 0
}

func TestLossMatchesFormula(t *testing.T) {
	cases := []lossCase{
		{"kto", klp, 0.1, 1, 1, zRef(klp, klr), false, true},
		{"kto", klp2, 0.3, 1.33, 0.75, zRef(klp2, klr), true, false},
		{"kto", klp2, 2.0, 1, 1, zRef(klp2, klr), true, false},
		{"apo_zero_unpaired", klp, 0.1, 1, 1, 0, false, false},
		{"apo_zero_unpaired", klp2, 0.5, 2, 0.5, 0, false, false},
	}
	for _, tc := range cases {
		tensor.Tidy(func() {
			loss, z, err := Loss(tc.lossType, hand(pol, tc.kl), &Params{Beta: tc.beta, DesirableWeight: tc.wd, UndesirableWeight: tc.wu})
			if err != nil {
				t.Fatal(err)
			}
			want := lossRef(tc.lossType, pol, tc.wantZ, tc.beta, tc.wd, tc.wu)
			if g := loss.ItemF64(); !near(g, want, 1e-6) {
				t.Errorf("%s beta %g weights %g/%g: loss %.9g, want %.9g", tc.lossType, tc.beta, tc.wd, tc.wu, g, want)
			}
			if g := z.ItemF64(); !near(g, tc.wantZ, 1e-6) {
				t.Errorf("%s: z %.9g, want %.9g", tc.lossType, g, tc.wantZ)
			}
			if tc.wantZPositive && !(tc.wantZ > 0) || tc.wantZIsClamped && tc.wantZ != 0 {
				t.Fatalf("fixture: z = %g", tc.wantZ)
			}
		})
	}
	// Every loss in the table is covered.
	for _, name := range LossTypes() {
		if !slices.ContainsFunc(cases, func(c lossCase) bool { return c.lossType == name }) {
			t.Errorf("loss_type %s has no test case", name)
		}
	}
}

// TestKLEstimate: z is the mean KL-row log-ratio, clamped at 0, and a
// constant (no gradient reaches the KL rows).
func TestKLEstimate(t *testing.T) {
	tensor.Tidy(func() {
		kp := t64(klp2)
		kp.SetRequiresGrad(true)
		z := KLEstimate(kp, t64(klr))
		want := (1.0 + 1.5 + 0 + 1.25 + 0.5) / 5 // klp2 - klr by hand
		if g := z.ItemF64(); !near(g, want, 1e-12) {
			t.Errorf("z = %.12g, want %.12g", g, want)
		}
		if z.RequiresGrad() {
			t.Error("z requires grad; TRL detaches it")
		}
		if g := KLEstimate(t64(klp), t64(klr)).ItemF64(); g != 0 {
			// klp - klr = -1, 0.5, -1, 0.25, -0.5: mean -0.35, clamped
			t.Errorf("z = %g for a negative mean, want 0", g)
		}
	})
}

// TestOneClassBatch: a batch of one class averages over its rows only
// (TRL's nanmean of the concatenation, the other class empty).
func TestOneClassBatch(t *testing.T) {
	tensor.Tidy(func() {
		x := &Logps{Policy: t64(pol[:1]), Ref: t64(ref[:1]), KL: t64(klp2[:1]), RefKL: t64(klr[:1]), Desirable: []bool{true}}
		loss, _, err := Loss("kto", x, &Params{Beta: 0.5, DesirableWeight: 1.5, UndesirableWeight: 1})
		if err != nil {
			t.Fatal(err)
		}
		z := math.Max(0, klp2[0]-klr[0])
		want := 1.5 * (1 - sigmoid(0.5*(pol[0]-ref[0]-z)))
		if g := loss.ItemF64(); !near(g, want, 1e-9) {
			t.Errorf("loss %.9g, want %.9g", g, want)
		}
	})
}

// TestGradient compares autograd's gradient with respect to the policy
// log-probs with central differences and with the closed form:
// desirable -w_d*b*s(u)(1-s(u))/B with u = b(r - z), undesirable
// +w_u*b*s(v)(1-s(v))/B with v = b(z - r), z held constant.
func TestGradient(t *testing.T) {
	const beta, wd, wu, h = 0.7, 1.2, 0.8, 1e-5
	for _, lossType := range LossTypes() {
		loss := func(p []float64) float64 {
			var v float64
			tensor.Tidy(func() {
				tensor.NoGrad(func() {
					l, _, _ := Loss(lossType, hand(p, klp2), &Params{Beta: beta, DesirableWeight: wd, UndesirableWeight: wu})
					v = l.ItemF64()
				})
			})
			return v
		}
		tensor.Tidy(func() {
			x := hand(pol, klp2)
			x.Policy.SetRequiresGrad(true)
			l, _, err := Loss(lossType, x, &Params{Beta: beta, DesirableWeight: wd, UndesirableWeight: wu})
			if err != nil {
				t.Fatal(err)
			}
			l.Backward()
			g := x.Policy.Grad().Float64s()
			z := 0.0
			if lossType == "kto" {
				z = zRef(klp2, klr)
			}
			B := float64(len(pol))
			for i := range g {
				p := slices.Clone(pol)
				p[i] += h
				up := loss(p)
				p[i] -= 2 * h
				fd := (up - loss(p)) / (2 * h)
				r := pol[i] - ref[i]
				var closed float64
				switch {
				case lab[i]:
					s := sigmoid(beta * (r - z))
					closed = -wd * beta * s * (1 - s) / B
				case lossType == "kto":
					s := sigmoid(beta * (z - r))
					closed = wu * beta * s * (1 - s) / B
				default:
					s := sigmoid(beta * r)
					closed = wu * beta * s * (1 - s) / B
				}
				if !near(g[i], fd, 1e-7) || !near(g[i], closed, 1e-10) {
					t.Errorf("%s row %d: grad %.9g, finite difference %.9g, closed form %.9g", lossType, i, g[i], fd, closed)
				}
			}
		})
	}
}

func TestLossBadInput(t *testing.T) {
	tensor.Tidy(func() {
		if _, _, err := Loss("sigmoid", hand(pol, klp), &Params{Beta: 0.1}); err == nil {
			t.Error("unknown loss_type accepted")
		}
		x := hand(pol, klp)
		x.KL = nil
		if _, _, err := Loss("kto", x, &Params{Beta: 0.1}); err == nil {
			t.Error("kto without KL rows accepted")
		}
		x = hand(pol, klp)
		x.Desirable = lab[:3]
		if _, _, err := Loss("kto", x, &Params{Beta: 0.1}); err == nil {
			t.Error("3 labels for 5 rows accepted")
		}
	})
}
