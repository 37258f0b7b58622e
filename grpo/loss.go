package grpo

import (
	"math"

	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
)

// Advantages computes GRPO's group-relative advantages (Shao et al. 2024,
// arXiv:2402.03300, section 4.1.2, "outcome supervision") as TRL's
// GRPOTrainer (grpo_trainer.py, _generate_and_score_completions,
// multi_objective_aggregation "sum_then_normalize"):
// R_i = nansum_k w_k r_ik (NaN when every r_ik is NaN, TRL's None);
// A_i = R_i - mean_group(R), divided by std + 1e-4 with scale "group"
// (the group's std) or "batch" (the whole batch's), not with "none".
// Means and stds skip NaN rows; stds have Bessel's correction (TRL's
// nanstd, trl/trainer/utils.py). Unscorable rows get advantage 0.
// perFunc is (N, K) row-major, N a multiple of g. isStdZero reports, per
// row, whether the std used (the group's for "group" and "none") is zero
// (frac_reward_zero_std).
func Advantages(perFunc [][]float64, weights []float64, g int, scale string) (adv, rewards []float64, isStdZero []bool) {
	N := len(perFunc)
	rewards = make([]float64, N)
	for i, r := range perFunc {
		rewards[i] = rollout.WeightedSum(r, weights)
	}
	std := make([]float64, N)
	mean := make([]float64, N)
	for lo := 0; lo < N; lo += g {
		m, s := NanMeanStd(rewards[lo : lo+g])
		for i := lo; i < lo+g; i++ {
			mean[i], std[i] = m, s
		}
	}
	if scale == "batch" {
		_, s := NanMeanStd(rewards)
		for i := range std {
			std[i] = s
		}
	}
	adv = make([]float64, N)
	isStdZero = make([]bool, N)
	for i := range adv {
		a := rewards[i] - mean[i]
		if scale != "none" {
			a /= std[i] + 1e-4
		}
		if math.IsNaN(a) {
			a = 0
		}
		adv[i] = a
		// torch.isclose(std, 0): |std| <= 1e-8 (atol) ; NaN is not close
		isStdZero[i] = math.Abs(std[i]) <= 1e-8
	}
	return adv, rewards, isStdZero
}

// NanMeanStd is the mean and the Bessel-corrected std of the non-NaN
// values (NaN when there are none; the std is NaN with one value, as
// torch's).
func NanMeanStd(x []float64) (mean, std float64) {
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

// LossParams are the settings of the policy loss.
type LossParams struct {
	LossType            string   // grpo, dr_grpo, dapo or bnpo
	Level               string   // importance_sampling_level: token or sequence
	EpsLow, EpsHigh     float64  // epsilon, epsilon_high
	Delta               *float64 // delta: upper bound of the unclipped ratio (two-sided clipping)
	Beta                float64  // weight of the k3 KL to the reference
	MaxCompletionLength int      // dr_grpo's normaliser
	// NumItems is num_items_in_batch: the completion tokens of the whole
	// generation batch (dapo's normaliser).
	NumItems float64
	// GAS is gradient_accumulation_steps: grpo, dr_grpo and bnpo divide by it.
	GAS int
}

// LossStats are the loss's metrics for one micro-batch, TRL's names.
type LossStats struct {
	KL                        float64 // kl: masked mean of the k3 KL (Beta != 0)
	ClipLowMean, ClipHighMean float64 // clip_ratio/low_mean, clip_ratio/high_mean
	ClipRegionMean            float64 // clip_ratio/region_mean
	ClipLowMin, ClipHighMax   float64 // clip_ratio/low_min, clip_ratio/high_max (over sequences)
	PolicyLoss                float64 // the loss before the GAS division
	// ClipCount is what the clip ratio means divide by: the tokens in the
	// mask, or the sequences at importance_sampling_level sequence.
	ClipCount float64
}

// Loss is TRL's GRPO policy loss (grpo_trainer.py, _compute_loss) for
// the loss types grpo, dr_grpo, dapo and bnpo, per token:
// ratio rho = exp(logp - old) (token level), or exp of the masked mean
// of logp - old per sequence (sequence level: GSPO's sequence importance
// ratio s_i, Zheng et al. 2025, arXiv:2507.18071); l = -min(rho A,
// clip(rho, 1-eps_low, 1+eps_high) A) (PPO's clipped surrogate, Schulman
// et al. 2017, arXiv:1707.06347, eq. 7; DAPO's decoupled "Clip-Higher",
// Yu et al. 2025, arXiv:2503.14476), rho first capped at delta when set
// (two-sided clipping); plus beta k3 KL to the reference
// (exp(ref-logp) - (ref-logp) - 1, Shao et al. 2024, eq. 4). Aggregation:
//   - grpo: mean over sequences of the per-sequence token mean, / GAS
//     (Shao et al. 2024, eq. 3);
//   - bnpo: token mean over the micro-batch, / GAS;
//   - dr_grpo: token sum / (B * max_completion_length), / GAS (Dr. GRPO,
//     Liu et al. 2025, arXiv:2503.20783);
//   - dapo: token sum / completion tokens of the generation batch (DAPO's
//     token-level policy gradient loss, Yu et al. 2025), no GAS division.
//
// logp, mask (B, T); old nil uses logp detached (num_iterations 1 with
// aligned generation); ref is needed when Beta != 0; adv (B, 1).
func Loss(logp, old, ref, adv, mask *tensor.Tensor, p LossParams) (loss *tensor.Tensor, st LossStats) {
	if old == nil {
		old = logp.Detach()
	}
	logRatio := logp.Sub(old) // (B, T)
	var logW *tensor.Tensor
	if p.Level == "sequence" {
		logW = logRatio.Mul(mask).SumDim(-1, true).Div(mask.SumDim(-1, true).ClampMin(1)) // (B, 1)
	} else {
		logW = logRatio
	}
	coef1 := logW.Exp()
	coef2 := coef1.Clamp(1-p.EpsLow, 1+p.EpsHigh)
	c1 := coef1
	if p.Delta != nil {
		c1 = coef1.ClampMax(*p.Delta)
	}
	perTok := c1.Mul(adv).Minimum(coef2.Mul(adv)).Neg() // (B, T) or (B, 1)
	var kl *tensor.Tensor
	if p.Beta != 0 {
		d := ref.Sub(logp)
		kl = d.Exp().Sub(d).AddScalar(-1) // (B, T)
		perTok = perTok.Add(kl.MulScalar(p.Beta))
	}
	if perTok.Size(1) != mask.Size(1) {
		perTok = perTok.Expand(mask.Size(0), mask.Size(1))
	}
	lm := perTok.Mul(mask)
	gas := float64(max(p.GAS, 1))
	switch p.LossType {
	case "grpo":
		loss = lm.SumDim(-1, false).Div(mask.SumDim(-1, false).ClampMin(1)).Mean()
	case "bnpo":
		loss = lm.Sum().Div(mask.Sum().ClampMin(1))
	case "dr_grpo":
		loss = lm.Sum().DivScalar(float64(mask.Size(0) * int64(p.MaxCompletionLength)))
	case "dapo":
		loss = lm.Sum().DivScalar(math.Max(p.NumItems, 1))
		gas = 1
	default:
		panic("grpo: unknown loss_type " + p.LossType) // Validate refuses it
	}
	tensor.NoGrad(func() {
		st.PolicyLoss = loss.ItemF64()
		if kl != nil {
			st.KL = globalMaskedMean(kl, mask)
		}
		low := coef1.LtScalar(1 - p.EpsLow).LogicalAnd(adv.LtScalar(0)).ToDType(mask.DType())
		high := coef1.GtScalar(1 + p.EpsHigh).LogicalAnd(adv.GtScalar(0)).ToDType(mask.DType())
		region := low.Add(high).ClampMax(1)
		st.ClipLowMean = globalMaskedMean(low, mask)
		st.ClipHighMean = globalMaskedMean(high, mask)
		st.ClipRegionMean = globalMaskedMean(region, mask)
		if low.Size(1) == 1 && mask.Size(1) != 1 {
			st.ClipCount = float64(low.Size(0))
		} else {
			st.ClipCount = mask.Sum().ItemF64()
		}
		st.ClipLowMin = nanMin(seqMean(low, mask))
		st.ClipHighMax = nanMax(seqMean(high, mask))
	})
	return loss.DivScalar(gas), st
}

// globalMaskedMean is TRL's global_masked_mean: sum(x m) / sum(m) for
// token-level x, the plain mean for per-sequence x (B, 1).
func globalMaskedMean(x, mask *tensor.Tensor) float64 {
	if x.Size(1) == 1 && mask.Size(1) != 1 {
		return x.Mean().ItemF64()
	}
	return x.Mul(mask).Sum().Div(mask.Sum().ClampMin(1)).ItemF64()
}

// seqMean is TRL's masked_seq_mean: per sequence sum(x m)/sum(m) (NaN for
// an empty sequence), or x itself for per-sequence x.
func seqMean(x, mask *tensor.Tensor) []float64 {
	if x.Size(1) == 1 && mask.Size(1) != 1 {
		return x.Squeeze(1).Float64s()
	}
	return x.Mul(mask).SumDim(-1, false).Div(mask.SumDim(-1, false)).Float64s()
}

func nanMin(x []float64) float64 {
	m := math.NaN()
	for _, v := range x {
		if !math.IsNaN(v) && (math.IsNaN(m) || v < m) {
			m = v
		}
	}
	return m
}

func nanMax(x []float64) float64 {
	m := math.NaN()
	for _, v := range x {
		if !math.IsNaN(v) && (math.IsNaN(m) || v > m) {
			m = v
		}
	}
	return m
}
