package reference

import (
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func approxSlice(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d values %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol || math.IsNaN(got[i]) {
			t.Errorf("%s[%d] = %.12g, want %.12g (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

func TestSoftmax(t *testing.T) {
	// e^1, e^2, e^3 normalised.
	approxSlice(t, "softmax(1,2,3)", softmax([]float64{1, 2, 3}),
		[]float64{0.09003057317038046, 0.24472847105479764, 0.6652409557748219}, 1e-12)
	// exp(ln 2) = 2, so the weights are 1/3 and 2/3.
	approxSlice(t, "softmax(0,ln2)", softmax([]float64{0, math.Ln2}), []float64{1.0 / 3, 2.0 / 3}, 1e-12)
	// Large inputs must not overflow.
	approxSlice(t, "softmax(1000,1000)", softmax([]float64{1000, 1000}), []float64{0.5, 0.5}, 0)
	// A masked entry gets exactly zero weight next to a real one...
	approxSlice(t, "softmax(min,0)", softmax([]float64{maskValue, 0}), []float64{0, 1}, 0)
	// ...and an all-masked row is uniform, not NaN.
	approxSlice(t, "softmax(min,min,min)", softmax([]float64{maskValue, maskValue, maskValue}),
		[]float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15)
}

func TestMaskValueIsFloat32Min(t *testing.T) {
	var v float64 = maskValue
	if v != -3.4028234663852886e38 || float64(float32(v)) != v {
		t.Fatalf("maskValue = %g, want torch.finfo(float32).min = -3.4028234663852886e38", v)
	}
	// HF adds the mask to the scores; at this magnitude a score of any
	// realistic size is absorbed, so adding and replacing agree.
	if v+1e6 != v {
		t.Fatalf("maskValue + 1e6 != maskValue")
	}
}

func TestLayerNorm(t *testing.T) {
	// x = (1,2,3): mean 2, biased variance (1+0+1)/3 = 2/3.
	s := math.Sqrt(2.0 / 3)
	approxSlice(t, "layerNorm eps=0", layerNorm([]float64{1, 2, 3}, []float64{1, 1, 1}, []float64{0, 0, 0}, 0),
		[]float64{-1 / s, 0, 1 / s}, 1e-12)
	// eps = 1: denominator sqrt(2/3 + 1) = sqrt(5/3); then *w + b.
	r := math.Sqrt(5.0 / 3)
	approxSlice(t, "layerNorm eps=1", layerNorm([]float64{1, 2, 3}, []float64{2, 1, 1}, []float64{0, 1, 0}, 1),
		[]float64{-2 / r, 1, 1 / r}, 1e-12)
	// Numbers: -1.5491933384829668, 1, 0.7745966692414834.
	approxSlice(t, "layerNorm eps=1 (numbers)", layerNorm([]float64{1, 2, 3}, []float64{2, 1, 1}, []float64{0, 1, 0}, 1),
		[]float64{-1.5491933384829668, 1, 0.7745966692414834}, 1e-12)
	// Two values (a, b) normalise to ±d/sqrt(d²+eps) with d = (a-b)/2;
	// d = 1.75, eps = 0.9375 gives d²+eps = 4 and so ±0.875.
	approxSlice(t, "layerNorm 2-d", layerNorm([]float64{5, 1.5}, []float64{1, 1}, []float64{0, 0}, 0.9375),
		[]float64{0.875, -0.875}, 1e-12)
}

func TestRMSNorm(t *testing.T) {
	// mean(9, 16) = 12.5.
	approxSlice(t, "rmsNorm eps=0", rmsNorm([]float64{3, 4}, []float64{1, 1}, 0),
		[]float64{3 / math.Sqrt(12.5), 4 / math.Sqrt(12.5)}, 1e-12)
	approxSlice(t, "rmsNorm eps=0 (numbers)", rmsNorm([]float64{3, 4}, []float64{1, 1}, 0),
		[]float64{0.8485281374238570, 1.1313708498984760}, 1e-12)
	// 12.5 + 3.5 = 16, sqrt = 4: (3/4*2, 4/4*0.5).
	approxSlice(t, "rmsNorm eps=3.5", rmsNorm([]float64{3, 4}, []float64{2, 0.5}, 3.5),
		[]float64{1.5, 0.5}, 1e-12)
	// No mean subtraction: a constant vector stays (almost) itself.
	approxSlice(t, "rmsNorm const", rmsNorm([]float64{2, 2, 2}, []float64{1, 1, 1}, 0),
		[]float64{1, 1, 1}, 1e-12)
}

func TestGELUTanh(t *testing.T) {
	cases := []struct{ x, want float64 }{
		{0, 0},
		{1, 0.8411919906082768},
		{-1, -0.15880800939172324},
	}
	for _, c := range cases {
		if got := geluTanh(c.x); math.Abs(got-c.want) > 1e-10 {
			t.Errorf("geluTanh(%g) = %.12g, want %.12g", c.x, got, c.want)
		}
	}
	// tanh is odd, so gelu(x) - gelu(-x) = x exactly in exact arithmetic.
	for _, x := range []float64{0.3, 1, 2.5, -4} {
		if got := geluTanh(x) - geluTanh(-x); math.Abs(got-x) > 1e-12 {
			t.Errorf("geluTanh(%g) - geluTanh(%g) = %g, want %g", x, -x, got, x)
		}
	}
	// Far out it tends to the identity / zero.
	if got := geluTanh(10); math.Abs(got-10) > 1e-9 {
		t.Errorf("geluTanh(10) = %g", got)
	}
	if got := geluTanh(-10); math.Abs(got) > 1e-9 {
		t.Errorf("geluTanh(-10) = %g", got)
	}
}

func TestSiLU(t *testing.T) {
	// 1/(1+e^-1) = 0.7310585786300049.
	for _, c := range []struct{ x, want float64 }{{0, 0}, {1, 0.7310585786300049}, {-1, -0.2689414213699951}} {
		if got := silu(c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("silu(%g) = %.15g, want %.15g", c.x, got, c.want)
		}
	}
}

func TestRopeInvFreqAndRotateHalf(t *testing.T) {
	approxSlice(t, "ropeInvFreq(8, 1e4)", ropeInvFreq(8, 10000), []float64{1, 0.1, 0.01, 0.001}, 1e-15)
	approxSlice(t, "rotateHalf", rotateHalf([]float64{1, 2, 3, 4}), []float64{-3, -4, 1, 2}, 0)
}

func TestRoPE(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	x := make([]float64, 8)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	// Position 0 is the identity.
	approxSlice(t, "rope pos 0", rope(x, 0, 10000), x, 0)

	// Norms are preserved (each pair (i, i+hd/2) is rotated).
	for _, pos := range []int{1, 2, 7, 123} {
		if got, want := floatsNorm(rope(x, pos, 10000)), floatsNorm(x); math.Abs(got-want) > 1e-12 {
			t.Errorf("rope pos %d: norm %g, want %g", pos, got, want)
		}
	}

	// Hand values, hd = 4, theta = 100: inv_freq = (1, 100^(-1/2)) = (1, 0.1).
	// Dimension 0 pairs with 2, dimension 1 with 3 (rotate_half, not
	// interleaved): rotate_half(1,0,0,0) = (0,0,1,0), so
	// rope(e0, p) = e0·cos(p) + e2·sin(p).
	p := 3
	approxSlice(t, "rope e0", rope([]float64{1, 0, 0, 0}, p, 100),
		[]float64{math.Cos(3), 0, math.Sin(3), 0}, 1e-12)
	approxSlice(t, "rope e1", rope([]float64{0, 1, 0, 0}, p, 100),
		[]float64{0, math.Cos(0.3), 0, math.Sin(0.3)}, 1e-12)
	// rotate_half(e2) = -e0: rope(e2, p) = e2·cos(p) - e0·sin(p).
	approxSlice(t, "rope e2", rope([]float64{0, 0, 1, 0}, p, 100),
		[]float64{-math.Sin(3), 0, math.Cos(3), 0}, 1e-12)
	// hd = 2, position 1: (1, 0) -> (cos 1, sin 1), whatever theta is.
	approxSlice(t, "rope hd2", rope([]float64{1, 0}, 1, 500000), []float64{math.Cos(1), math.Sin(1)}, 1e-12)

	// Scores depend only on the relative position.
	q, k := x[:], make([]float64, 8)
	for i := range k {
		k[i] = rng.NormFloat64()
	}
	a := floatsDot(rope(q, 5, 10000), rope(k, 2, 10000))
	b := floatsDot(rope(q, 9, 10000), rope(k, 6, 10000))
	if math.Abs(a-b) > 1e-12 {
		t.Errorf("rope scores not shift invariant: %g vs %g", a, b)
	}
}

func floatsDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func floatsNorm(a []float64) float64 { return math.Sqrt(floatsDot(a, a)) }

func TestConv1DAndLinearOrientation(t *testing.T) {
	x := mat.NewDense(1, 2, []float64{1, 2})
	// Conv1D weight is [in=2, out=3]: y_j = Σ_i x_i W[i][j].
	w := mat.NewDense(2, 3, []float64{
		1, 0, 2,
		0, 1, 3,
	})
	approxSlice(t, "conv1D", conv1D(x, w, []float64{10, 20, 30}).RawRowView(0), []float64{11, 22, 38}, 0)
	// Linear weight is [out=3, in=2]: y_j = Σ_i W[j][i] x_i.
	l := mat.NewDense(3, 2, []float64{
		1, 0,
		2, 1,
		0, 3,
	})
	approxSlice(t, "linear", linear(x, l, nil).RawRowView(0), []float64{1, 4, 6}, 0)
	approxSlice(t, "linear+b", linear(x, l, []float64{1, 1, 1}).RawRowView(0), []float64{2, 5, 7}, 0)
}

func TestPositionIDs(t *testing.T) {
	cases := []struct{ mask, want []int }{
		{[]int{1, 1, 1}, []int{0, 1, 2}},
		{[]int{0, 0, 1, 1, 1}, []int{0, 0, 0, 1, 2}}, // left padding
		{[]int{1, 1, 0, 0}, []int{0, 1, 1, 1}},       // right padding
		{[]int{0, 1, 0, 1}, []int{0, 0, 0, 1}},
	}
	for _, c := range cases {
		got := positionIDs(c.mask)
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("positionIDs(%v) = %v, want %v", c.mask, got, c.want)
				break
			}
		}
	}
}

func TestAttentionHelper(t *testing.T) {
	// One head, d = 1, three positions; key 0 is padding.
	q := mat.NewDense(3, 1, []float64{1, 2, 3})
	k := mat.NewDense(3, 1, []float64{1, 1, 2})
	v := mat.NewDense(3, 1, []float64{10, 20, 40})
	out := attention(q, k, v, []int{0, 1, 1})
	// Row 0 sees no key at all (pad query, left padding): uniform over all
	// three keys, (10+20+40)/3, and in particular not NaN.
	// Row 1 sees only key 1: 20.
	// Row 2 sees keys 1 and 2 with scores 3·1 and 3·2 (d = 1, no scaling):
	// weights 1/(1+e^3) and e^3/(1+e^3).
	e3 := math.Exp(3)
	want := []float64{70.0 / 3, 20, (20 + 40*e3) / (1 + e3)}
	approxSlice(t, "attention", mat.Col(nil, 0, out), want, 1e-12)

	// Scaling by 1/sqrt(d): d = 4, q = k = (1,1,1,1) at both positions,
	// score 4/2 = 2 for both keys at row 1, so equal weights.
	q4 := mat.NewDense(2, 4, []float64{1, 1, 1, 1, 1, 1, 1, 1})
	k4 := mat.NewDense(2, 4, []float64{1, 1, 1, 1, 0, 0, 0, 0})
	v4 := mat.NewDense(2, 4, []float64{1, 0, 0, 0, 0, 1, 0, 0})
	// Row 1: scores (4/2, 0) = (2, 0): weights e²/(1+e²), 1/(1+e²).
	e2 := math.Exp(2)
	approxSlice(t, "attention scaled", attention(q4, k4, v4, []int{1, 1}).RawRowView(1),
		[]float64{e2 / (1 + e2), 1 / (1 + e2), 0, 0}, 1e-12)
}
