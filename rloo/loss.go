package rloo

import (
	"math"

	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
)

// Rewards are RLOO's per-completion rewards (rloo_trainer.py,
// _generate_and_score_completions): R_i = nansum_k w_k r_ik (NaN when
// every r_ik is NaN, TRL's None), clipped to clipRange when set, minus
// beta times the completion's summed k1 KL to the reference, sum_t (old_t
// - ref_t) (Ahmadian et al. 2024, arXiv:2402.14740: the KL as a sequence-level
// reward penalty). klSum may be nil when beta is 0.
func Rewards(perFunc [][]float64, weights, clipRange []float64, beta float64, klSum []float64) []float64 {
	R := make([]float64, len(perFunc))
	for i, r := range perFunc {
		s := rollout.WeightedSum(r, weights)
		if math.IsNaN(s) {
			R[i] = s
			continue
		}
		if len(clipRange) == 2 {
			s = math.Min(math.Max(s, clipRange[0]), clipRange[1])
		}
		if beta != 0 {
			s -= beta * klSum[i]
		}
		R[i] = s
	}
	return R
}

// Advantages are RLOO's leave-one-out advantages (the RLOO estimator of
// Ahmadian et al. 2024, after Kool et al. 2019, "Buy 4 REINFORCE samples,
// get a baseline for free"): A_i = R_i - b_i with b_i = (sum_{j in group,
// scorable} R_j - R_i) / (scorable - 1), then, with normalize, (A -
// mean(A)) / (std(A) + 1e-4) over the batch (Bessel's std); NaN
// (unscorable rows, groups with one scorable row) becomes 0. zeroStd is,
// per group, whether the group's rewards have zero std
// (frac_reward_zero_std).
func Advantages(R []float64, g int, normalize bool) (adv []float64, zeroStd []bool) {
	adv = make([]float64, len(R))
	for lo := 0; lo < len(R); lo += g {
		var sum, n float64
		for _, v := range R[lo : lo+g] {
			if !math.IsNaN(v) {
				sum += v
				n++
			}
		}
		for i := lo; i < lo+g; i++ {
			adv[i] = R[i] - (sum-R[i])/(n-1)
		}
		_, s := nanMeanStd(R[lo : lo+g])
		zeroStd = append(zeroStd, math.Abs(s) <= 1e-8)
	}
	if normalize {
		m, s := nanMeanStd(adv)
		for i := range adv {
			adv[i] = (adv[i] - m) / (s + 1e-4)
		}
	}
	for i, a := range adv {
		if math.IsNaN(a) || math.IsInf(a, 0) {
			adv[i] = 0
		}
	}
	return adv, zeroStd
}

// nanMeanStd is the mean and Bessel-corrected std of the non-NaN values.
func nanMeanStd(x []float64) (mean, std float64) {
	var n, s float64
	for _, v := range x {
		if !math.IsNaN(v) {
			s += v
			n++
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	mean = s / n
	var ss float64
	for _, v := range x {
		if !math.IsNaN(v) {
			ss += (v - mean) * (v - mean)
		}
	}
	return mean, math.Sqrt(ss / (n - 1))
}

// LossStats are TRL's clip metrics of a micro-batch, over its sequences.
type LossStats struct {
	ClipLowMean, ClipLowMin   float64 // clip_ratio/low_mean, clip_ratio/low_min
	ClipHighMean, ClipHighMax float64 // clip_ratio/high_mean, clip_ratio/high_max
	ClipRegionMean            float64 // clip_ratio/region_mean
}

// Loss is RLOOTrainer's loss (rloo_trainer.py, _compute_loss): the
// sequence log-prob ratio rho_i = exp(sum_t logp m - oldLogps_i), and
// mean_i -min(rho_i A_i, clip(rho_i, 1-eps_low, 1+eps_high) A_i) (PPO's
// clipped surrogate, Schulman et al. 2017, arXiv:1707.06347, eq. 7, at
// sequence level). logp, mask (B, T); oldLogps and adv (B).
func Loss(logp, mask, oldLogps, adv *tensor.Tensor, epsLow, epsHigh float64) (loss *tensor.Tensor, st LossStats) {
	logps := logp.Mul(mask).SumDim(1, false) // (B)
	coef1 := logps.Sub(oldLogps).Exp()
	coef2 := coef1.Clamp(1-epsLow, 1+epsHigh)
	loss = coef1.Mul(adv).Minimum(coef2.Mul(adv)).Neg().Mean()
	tensor.NoGrad(func() {
		low := coef1.LtScalar(1 - epsLow).LogicalAnd(adv.LtScalar(0)).ToDType(tensor.Float64)
		high := coef1.GtScalar(1 + epsHigh).LogicalAnd(adv.GtScalar(0)).ToDType(tensor.Float64)
		st.ClipLowMean, st.ClipLowMin = low.Mean().ItemF64(), low.Min().ItemF64()
		st.ClipHighMean, st.ClipHighMax = high.Mean().ItemF64(), high.Max().ItemF64()
		st.ClipRegionMean = low.Add(high).ClampMax(1).Mean().ItemF64()
	})
	return loss, st
}
