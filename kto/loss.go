package kto

import (
	"fmt"

	"github.com/rlsuite/rl/shared/tensor"
)

// Logps are what the KTO losses are built from, one value per row (B):
// sequence log-probabilities of the completions under the policy and the
// reference, summed over completion tokens, those of the KL rows (a
// prompt with its batch neighbour's completion), and the labels.
type Logps struct {
	Policy, Ref *tensor.Tensor // (B) rows; gradients flow through Policy
	// KL and RefKL (B) are the KL rows' log-probs under the policy and the
	// reference (constants); nil for a loss without the KL term.
	KL, RefKL *tensor.Tensor
	Desirable []bool // (B) labels
}

// Params are the settings the losses read.
type Params struct {
	Beta                               float64
	DesirableWeight, UndesirableWeight float64
}

// lossFunc gives the per-row losses (B) of desirable and of undesirable
// rows from the log-ratios r = log pi(y|x) - log ref(y|x) (B) and the KL
// estimate z (a scalar constant; zero for losses without it).
type lossFunc struct {
	desirable, undesirable func(r, z *tensor.Tensor, beta float64) *tensor.Tensor
	kl                     bool // uses z (TRL's calculate_KL)
}

// losses is TRL's loss_type table (trl/trainer/kto_trainer.py,
// _compute_loss); b = beta, s = sigmoid.
var losses = map[string]lossFunc{
	// KTO (Ethayarajh et al. 2024, arXiv:2402.01306), Eq. 7 with the
	// value function's lambda_D, lambda_U as desirable_weight,
	// undesirable_weight: desirable 1 - s(b(r - z)), undesirable
	// 1 - s(b(z - r)).
	"kto": {
		desirable: func(r, z *tensor.Tensor, beta float64) *tensor.Tensor {
			return r.Sub(z).MulScalar(beta).Sigmoid().Neg().AddScalar(1)
		},
		undesirable: func(r, z *tensor.Tensor, beta float64) *tensor.Tensor {
			return z.Sub(r).MulScalar(beta).Sigmoid().Neg().AddScalar(1)
		},
		kl: true,
	},
	// The unpaired variant of APO-zero (D'Oosterlinck et al. 2024,
	// arXiv:2408.06266, Eq. 7): desirable 1 - s(b*r), undesirable s(b*r);
	// no KL term.
	"apo_zero_unpaired": {
		desirable: func(r, _ *tensor.Tensor, beta float64) *tensor.Tensor {
			return r.MulScalar(beta).Sigmoid().Neg().AddScalar(1)
		},
		undesirable: func(r, _ *tensor.Tensor, beta float64) *tensor.Tensor {
			return r.MulScalar(beta).Sigmoid()
		},
	},
}

// KLEstimate is KTO's reference point z = max(0, mean over the KL rows of
// log pi(y'|x) - log ref(y'|x)), detached (TRL: (KL_logps -
// ref_KL_logps).mean().detach(), gathered, clamp(min=0); the paper's z_0,
// Eq. 7-8, estimated from mismatched pairs).
func KLEstimate(kl, refKL *tensor.Tensor) *tensor.Tensor {
	return kl.Sub(refKL).Mean().ClampMin(0).Detach()
}

// Loss returns TRL's KTO loss, nanmean(cat(w_d*L_d, w_u*L_u)): the mean
// over the batch's rows of each row's weighted loss, and the KL estimate
// z (zero without the KL term).
func Loss(lossType string, x *Logps, p *Params) (loss, z *tensor.Tensor, err error) {
	f, ok := losses[lossType]
	if !ok {
		return nil, nil, fmt.Errorf("kto: unknown loss_type %q", lossType)
	}
	B := x.Policy.Size(0)
	if int64(len(x.Desirable)) != B || x.Ref.Size(0) != B {
		return nil, nil, fmt.Errorf("kto: %d rows, %d labels, %d reference log-probs", B, len(x.Desirable), x.Ref.Size(0))
	}
	r := x.Policy.Sub(x.Ref) // (B)
	if f.kl {
		if x.KL == nil || x.RefKL == nil {
			return nil, nil, fmt.Errorf("kto: loss_type %s needs the KL rows' log-probs", lossType)
		}
		z = KLEstimate(x.KL, x.RefKL)
	} else {
		z = tensor.ZerosOn(nil, r.DType(), r.Device())
	}
	// Class masks: the weighted losses of each row's class, summed over
	// the rows and divided by B, are TRL's mean of the concatenated class
	// losses.
	md, mu := make([]float32, B), make([]float32, B)
	for i, d := range x.Desirable {
		if d {
			md[i] = 1
		} else {
			mu[i] = 1
		}
	}
	dev := r.Device()
	Md := tensor.Float32sOn(md, r.DType(), dev, B)
	Mu := tensor.Float32sOn(mu, r.DType(), dev, B)
	per := f.desirable(r, z, p.Beta).Mul(Md).MulScalar(p.DesirableWeight).
		Add(f.undesirable(r, z, p.Beta).Mul(Mu).MulScalar(p.UndesirableWeight)) // (B)
	return per.Mean(), z, nil
}
