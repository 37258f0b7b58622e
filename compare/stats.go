package compare

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Confidence is the coverage of the intervals Summarize gives.
const Confidence = 0.95

// Summary describes one metric over the seeds of a configuration.
type Summary struct {
	N    int
	Mean float64
	// Std is the sample standard deviation (divisor N-1); NaN when N < 2.
	Std float64
	// Lo and Hi bound the 95% interval of the mean, Mean ± t(0.975, N-1)·Std/√N
	// (Student's t with N-1 degrees of freedom); NaN when N < 2.
	Lo, Hi float64
}

// Summarize returns the mean, sample standard deviation and 95% Student's t
// interval of xs (Student 1908; e.g. NIST/SEMATECH e-Handbook 7.2.2.1).
func Summarize(xs []float64) Summary {
	s := Summary{N: len(xs), Mean: math.NaN(), Std: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	if s.N == 0 {
		return s
	}
	s.Mean = mean(xs)
	if s.N < 2 {
		return s
	}
	s.Std = sampleStd(xs, s.Mean)
	half := tQuantile(1-(1-Confidence)/2, float64(s.N-1)) * s.Std / math.Sqrt(float64(s.N))
	s.Lo, s.Hi = s.Mean-half, s.Mean+half
	return s
}

// PairedTest is a paired t-test of A against B.
type PairedTest struct {
	N        int     // pairs
	MeanDiff float64 // mean of A - B
	StdDiff  float64 // sample standard deviation of A - B
	T        float64 // MeanDiff / (StdDiff / √N)
	DF       int     // N - 1
	P        float64 // two-sided p-value, 2·P(T_df > |t|)
}

// PairedT runs a paired t-test on equal-length a and b: t = mean(d) /
// (sd(d)/√n) with d = a - b, n-1 degrees of freedom, and the two-sided
// p-value from Student's t distribution. With fewer than two pairs every
// statistic but N is NaN; differences that are all equal give t = ±Inf
// (p = 0), or t = 0 (p = 1) when they are all zero.
func PairedT(a, b []float64) PairedTest {
	n := min(len(a), len(b))
	r := PairedTest{N: n, MeanDiff: math.NaN(), StdDiff: math.NaN(), T: math.NaN(), DF: n - 1, P: math.NaN()}
	if n < 2 {
		return r
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = a[i] - b[i]
	}
	r.MeanDiff = mean(d)
	r.StdDiff = sampleStd(d, r.MeanDiff)
	switch {
	case r.StdDiff == 0 && r.MeanDiff == 0:
		r.T, r.P = 0, 1
	case r.StdDiff == 0:
		r.T, r.P = math.Copysign(math.Inf(1), r.MeanDiff), 0
	default:
		r.T = r.MeanDiff / (r.StdDiff / math.Sqrt(float64(n)))
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(r.DF)}
		r.P = 2 * t.Survival(math.Abs(r.T))
	}
	return r
}

// tQuantile is the p quantile of Student's t with nu degrees of freedom.
func tQuantile(p, nu float64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nu}.Quantile(p)
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// sampleStd is the standard deviation with divisor n-1, in two passes.
func sampleStd(xs []float64, m float64) float64 {
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}
