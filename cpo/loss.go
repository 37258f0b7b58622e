package cpo

import (
	"fmt"

	"github.com/rlsuite/rl/shared/tensor"
)

// Logps are what the CPO losses are built from, one value per pair (B):
// the policy's log-probabilities of the chosen and rejected completions,
// summed over completion tokens, and the number of those tokens.
type Logps struct {
	Chosen, Rejected       *tensor.Tensor // gradients flow through these
	ChosenLen, RejectedLen *tensor.Tensor
}

// Params are the settings the losses read (a resolved Config: no alphapo).
type Params struct {
	Type           string
	Beta           float64
	LabelSmoothing float64
	CPOAlpha       float64
	Gamma          float64 // simpo_gamma
	Alpha          float64 // AlphaPO's alpha; 0: rewards are the log-probs
}

// Terms are the CPO loss and its parts.
type Terms struct {
	Loss *tensor.Tensor // scalar: mean(Losses) + cpo_alpha * NLL
	// Losses (B) is the preference loss of each pair.
	Losses *tensor.Tensor
	// NLL (scalar) is the NLL of the chosen completions, mean over their
	// tokens; 0 when cpo_alpha is 0 (TRL's nll_loss).
	NLL *tensor.Tensor
	// Chosen, Rejected (B) are the log-probs the loss sees: summed, or
	// averaged over tokens for ipo and simpo (TRL's logps/*).
	Chosen, Rejected *tensor.Tensor
	// ChosenReward, RejectedReward (B) are r(y_w), r(y_l) before beta:
	// the log-probs, or AlphaPO's (1 - p^-alpha)/alpha.
	ChosenReward, RejectedReward *tensor.Tensor
}

// lossFunc maps the reward margin z = r(y_w) - r(y_l) (B) to the per-pair loss.
type lossFunc func(z *tensor.Tensor, p *Params) *tensor.Tensor

// losses is TRL's CPO loss_type table (trl/experimental/cpo/cpo_trainer.py,
// cpo_loss); b = beta, e = label_smoothing, s = sigmoid, z the margin.
var losses = map[string]lossFunc{
	// -(1-e) log s(b*z) - e log s(-b*z): CPO (Xu et al. 2024,
	// arXiv:2401.08417), Eq. 3 (the DPO loss with the reference dropped),
	// conservatively smoothed for e > 0.
	"sigmoid": smoothedSigmoid,
	// relu(1 - b*z): the SLiC hinge loss (Zhao et al. 2023,
	// arXiv:2305.10425), Eq. 4, on the policy's log-probs.
	"hinge": func(z *tensor.Tensor, p *Params) *tensor.Tensor {
		return z.MulScalar(-p.Beta).AddScalar(1).Relu()
	},
	// (z - 1/(2b))^2: IPO (Azar et al. 2023, arXiv:2310.12036), Eq. 17
	// with tau = beta, on per-token averaged log-probs.
	"ipo": func(z *tensor.Tensor, p *Params) *tensor.Tensor {
		return z.AddScalar(-1 / (2 * p.Beta)).Square()
	},
	// -(1-e) log s(b*z - gamma) - e log s(-(b*z - gamma)): SimPO (Meng et
	// al. 2024, arXiv:2405.14734), Eq. 6, on per-token averaged log-probs
	// (TRL subtracts gamma/beta from z before the sigmoid loss).
	"simpo": func(z *tensor.Tensor, p *Params) *tensor.Tensor {
		return smoothedSigmoid(z.AddScalar(-p.Gamma/p.Beta), p)
	},
}

func smoothedSigmoid(z *tensor.Tensor, p *Params) *tensor.Tensor {
	bz := z.MulScalar(p.Beta)
	l := bz.LogSigmoid().MulScalar(-(1 - p.LabelSmoothing))
	if p.LabelSmoothing == 0 {
		return l
	}
	return l.Sub(bz.Neg().LogSigmoid().MulScalar(p.LabelSmoothing))
}

// Averages reports whether a loss type reads per-token averaged log-probs
// (TRL's concatenated_forward: average_log_prob for ipo and simpo; alphapo
// is simpo); the others read sums.
func Averages(lossType string) bool {
	return lossType == "ipo" || lossType == "simpo" || lossType == "alphapo"
}

// reward is AlphaPO's reward (Gupta et al. 2025, arXiv:2501.03884, Eq. 5):
// r = (1 - p^-alpha)/alpha with p = e^logp, written as
// -expm1(-alpha*logp)/alpha, which equals TRL's (1 - exp(logp).pow(-alpha))
// / alpha without underflowing exp(logp) to 0 for long completions. alpha
// 0 is its limit, r = logp.
func reward(logp *tensor.Tensor, alpha float64) *tensor.Tensor {
	if alpha == 0 {
		return logp
	}
	return logp.MulScalar(-alpha).Expm1().DivScalar(-alpha)
}

// Loss is TRL's CPO objective (cpo_trainer.py, get_batch_loss_metrics):
//
//	L = mean(loss_type(r(y_w) - r(y_l))) + cpo_alpha * NLL(y_w),
//
// with r the log-probs (averaged over tokens for ipo and simpo), or
// AlphaPO's reward, and NLL the chosen completions' cross-entropy, mean over
// their tokens (Xu et al. 2024, Eq. 6: the CPO loss plus the
// behaviour-cloning term).
func Loss(x *Logps, p *Params) (Terms, error) {
	var t Terms
	f, ok := losses[p.Type]
	if !ok {
		return t, fmt.Errorf("cpo: unknown loss_type %q (alphapo resolves to simpo first)", p.Type)
	}
	t.Chosen, t.Rejected = x.Chosen, x.Rejected
	if Averages(p.Type) {
		t.Chosen = x.Chosen.Div(x.ChosenLen.ClampMin(1))       // (B)
		t.Rejected = x.Rejected.Div(x.RejectedLen.ClampMin(1)) // (B)
	}
	t.ChosenReward, t.RejectedReward = reward(t.Chosen, p.Alpha), reward(t.Rejected, p.Alpha)
	t.Losses = f(t.ChosenReward.Sub(t.RejectedReward), p)
	t.Loss = t.Losses.Mean()
	if p.CPOAlpha == 0 {
		t.NLL = tensor.ZerosOn(nil, t.Loss.DType(), t.Loss.Device())
		return t, nil
	}
	t.NLL = x.Chosen.Sum().Neg().Div(x.ChosenLen.Sum().ClampMin(1))
	t.Loss = t.Loss.Add(t.NLL.MulScalar(p.CPOAlpha))
	return t, nil
}
