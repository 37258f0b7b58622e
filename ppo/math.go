package ppo

import (
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// InvalidLogprob fills log-prob slots past the end of a response, as TRL does.
const InvalidLogprob = 1.0

// KL is the per-token KL estimate from policy and reference log-probs
// (Schulman, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html):
// with logr = ref - logp, k1 = -logr and k3 = (exp(logr) - 1) - logr.
func KL(logp, ref float64, estimator string) float64 {
	logr := ref - logp
	if estimator == "k3" {
		return math.Expm1(logr) - logr
	}
	return -logr
}

// GAE computes generalised advantage estimates and returns (Schulman et
// al. 2016, eq. 16) over a padded response of length R:
// delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1},
// with V_R = 0; returns = A + V.
func GAE(rewards, values []float64, gamma, lam float64) (adv, ret []float64) {
	R := len(rewards)
	adv = make([]float64, R)
	ret = make([]float64, R)
	last := 0.0
	for t := R - 1; t >= 0; t-- {
		next := 0.0
		if t < R-1 {
			next = values[t+1]
		}
		delta := rewards[t] + gamma*next - values[t]
		last = delta + gamma*lam*last
		adv[t] = last
		ret[t] = last + values[t]
	}
	return adv, ret
}

// MaskedWhiten normalises the masked entries of x to zero mean (kept when
// shiftMean is false) and unit variance, with the unbiased masked variance,
// as TRL's masked_whiten: (x - mean) / sqrt(var + 1e-8).
func MaskedWhiten(x [][]float64, mask [][]bool, shiftMean bool) [][]float64 {
	var sum, n float64
	for i := range x {
		for j := range x[i] {
			if mask[i][j] {
				sum += x[i][j]
				n++
			}
		}
	}
	if n == 0 {
		return x
	}
	mean := sum / n
	var ss float64
	for i := range x {
		for j := range x[i] {
			if mask[i][j] {
				ss += (x[i][j] - mean) * (x[i][j] - mean)
			}
		}
	}
	variance := ss / n
	if n > 1 {
		variance *= n / (n - 1) // Bessel's correction, as masked_var(unbiased=True)
	}
	inv := 1 / math.Sqrt(variance+1e-8)
	out := make([][]float64, len(x))
	for i := range x {
		out[i] = make([]float64, len(x[i]))
		for j, v := range x[i] {
			w := (v - mean) * inv
			if !shiftMean {
				w += mean
			}
			out[i][j] = w
		}
	}
	return out
}

// maskedMean is sum(x*mask)/sum(mask) over all elements.
func maskedMean(x, mask *tensor.Tensor) *tensor.Tensor {
	return x.Mul(mask).Sum().Div(mask.Sum().ClampMin(1))
}

// PolicyLoss is PPO's clipped surrogate (Schulman et al. 2017, eq. 7) as
// TRL computes it: ratio = exp(new - old); loss = masked mean of
// max(-A ratio, -A clip(ratio, 1-eps, 1+eps)). It also returns the clip
// fraction, approx KL 0.5 mean((new-old)^2) and the mean ratio (no grad).
func PolicyLoss(newLogp, oldLogp, adv, mask *tensor.Tensor, clip float64) (loss *tensor.Tensor, clipfrac, approxKL, ratioMean float64) {
	diff := newLogp.Sub(oldLogp)
	ratio := diff.Exp()
	l1 := adv.Neg().Mul(ratio)
	l2 := adv.Neg().Mul(ratio.Clamp(1-clip, 1+clip))
	loss = maskedMean(l1.Maximum(l2), mask)
	tensor.NoGrad(func() {
		clipfrac = maskedMean(l2.Gt(l1).ToDType(mask.DType()), mask).ItemF64()
		approxKL = 0.5 * diff.Square().Mean().ItemF64()
		ratioMean = ratio.Mean().ItemF64()
	})
	return loss, clipfrac, approxKL, ratioMean
}

// ValueLoss is the clipped value loss: 0.5 * masked mean of
// max((v - R)^2, (clip(v, v_old - eps, v_old + eps) - R)^2); also the clip fraction.
func ValueLoss(vpred, oldValues, returns, mask *tensor.Tensor, clip float64) (loss *tensor.Tensor, clipfrac float64) {
	clipped := vpred.Maximum(oldValues.AddScalar(-clip)).Minimum(oldValues.AddScalar(clip))
	l1 := vpred.Sub(returns).Square()
	l2 := clipped.Sub(returns).Square()
	loss = maskedMean(l1.Maximum(l2), mask).MulScalar(0.5)
	tensor.NoGrad(func() {
		clipfrac = maskedMean(l2.Gt(l1).ToDType(mask.DType()), mask).ItemF64()
	})
	return loss, clipfrac
}
