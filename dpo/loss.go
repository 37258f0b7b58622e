package dpo

import (
	"fmt"
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// Logps are what every DPO loss is built from, one value per pair (B):
// sequence log-probabilities of the chosen and rejected completions under
// the policy and the reference, summed over completion tokens, and the
// number of those tokens.
type Logps struct {
	Chosen, Rejected       *tensor.Tensor // policy; gradients flow through these
	RefChosen, RefRejected *tensor.Tensor // reference (constants)
	ChosenLen, RejectedLen *tensor.Tensor // completion tokens per row
}

// Params are the settings the losses read.
type Params struct {
	Beta           float64
	LabelSmoothing float64
}

// lossFunc returns the per-pair loss (B), or a scalar that applies to
// every pair.
type lossFunc func(x *Logps, p *Params) *tensor.Tensor

// losses is TRL's loss_type table. Below, with policy and reference
// log-probs summed over the completion,
//
//	c = log pi(y_w|x) - log ref(y_w|x),  r = log pi(y_l|x) - log ref(y_l|x),
//	d = c - r,  b = beta,  s = sigmoid.
var losses = map[string]lossFunc{
	// -log s(b*d): Rafailov et al. 2023 (arXiv:2305.18290), Eq. 7.
	"sigmoid": func(x *Logps, p *Params) *tensor.Tensor {
		return delta(x).MulScalar(p.Beta).LogSigmoid().Neg()
	},
	// relu(1 - b*d): the SLiC hinge loss (Zhao et al. 2023,
	// arXiv:2305.10425) on the DPO log-ratios, as in RSO (Liu et al. 2023,
	// arXiv:2309.06657), Eq. 12.
	"hinge": func(x *Logps, p *Params) *tensor.Tensor {
		return delta(x).MulScalar(-p.Beta).AddScalar(1).Relu()
	},
	// (c/|y_w| - r/|y_l| - 1/(2b))^2: IPO (Azar et al. 2023,
	// arXiv:2310.12036), Eq. 17 with tau = beta, on per-token averaged
	// log-ratios as TRL does (confirmed with the IPO authors, per TRL).
	"ipo": func(x *Logps, p *Params) *tensor.Tensor {
		return normDelta(x).AddScalar(-1 / (2 * p.Beta)).Square()
	},
	// (-(1-e) log s(b*d) + e log s(-b*d)) / (1-2e), e = label_smoothing:
	// the unbiased loss of robust DPO (Chowdhury et al. 2024,
	// arXiv:2403.00409) for labels flipped with probability e.
	"robust": func(x *Logps, p *Params) *tensor.Tensor {
		e := p.LabelSmoothing
		bd := delta(x).MulScalar(p.Beta)
		clean := bd.LogSigmoid().MulScalar(-(1 - e))
		flipped := bd.Neg().LogSigmoid().MulScalar(e)
		return clean.Add(flipped).DivScalar(1 - 2*e)
	},
	// s(b*d)(log s(b*d) - log(1-e)) + s(-b*d)(log s(-b*d) - log e): EXO-pref
	// (Ji et al. 2024, arXiv:2402.00856), Eq. 16, the reverse KL to the
	// label distribution (1-e, e); e = label_smoothing, which must be > 0
	// (Config.Validate refuses 0, as TRL's DPOTrainer raises; the paper
	// recommends 1e-3).
	"exo_pair": func(x *Logps, p *Params) *tensor.Tensor {
		e := p.LabelSmoothing
		bd := delta(x).MulScalar(p.Beta)
		win := bd.Sigmoid().Mul(bd.LogSigmoid().AddScalar(-math.Log1p(-e)))
		lose := bd.Neg().Sigmoid().Mul(bd.Neg().LogSigmoid().AddScalar(-math.Log(e)))
		return win.Add(lose)
	},
	// -log s(b*c) - log s(-b*r): the paired form of Binary Classifier
	// Optimization (Jung et al. 2024, arXiv:2404.04656) as TRL computes it
	// since huggingface/trl#3906, without the running reward baseline
	// (trl/trainer/dpo_trainer.py, _compute_loss, loss_type "bco_pair").
	"bco_pair": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		return c.MulScalar(p.Beta).LogSigmoid().Neg().Sub(r.MulScalar(-p.Beta).LogSigmoid())
	},
	// (c - 1/(2b))^2 + (r + 1/(2b))^2: SPPO (Wu et al. 2024,
	// arXiv:2405.00675), Eq. 4.7 with the hard win probability (1 for the
	// chosen, 0 for the rejected).
	"sppo_hard": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		h := 1 / (2 * p.Beta)
		return c.AddScalar(-h).Square().Add(r.AddScalar(h).Square())
	},
	// -log s(b*c) - 0.5 log s(-b*c) - 0.5 log s(-b*r): NCA for pairwise
	// preferences (Chen et al. 2024, arXiv:2402.05369).
	"nca_pair": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		bc, br := c.MulScalar(p.Beta), r.MulScalar(p.Beta)
		return bc.LogSigmoid().Neg().
			Sub(bc.Neg().LogSigmoid().MulScalar(0.5)).
			Sub(br.Neg().LogSigmoid().MulScalar(0.5))
	},
	// (1 - s(b*c)) + s(b*r): APO-zero (D'Oosterlinck et al. 2024,
	// arXiv:2408.06266), Eq. 7: raise the chosen, lower the rejected.
	"apo_zero": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		return c.MulScalar(p.Beta).Sigmoid().Neg().AddScalar(1).Add(r.MulScalar(p.Beta).Sigmoid())
	},
	// s(b*c) + (1 - s(b*d)): APO-down (D'Oosterlinck et al. 2024), Eq. 8:
	// lower the chosen, the rejected more.
	"apo_down": func(x *Logps, p *Params) *tensor.Tensor {
		c, _ := logratios(x)
		return c.MulScalar(p.Beta).Sigmoid().Add(delta(x).MulScalar(p.Beta).Sigmoid().Neg().AddScalar(1))
	},
	// -log s(b*(c/|y_w| - r/|y_l|)): length-normalised DPO, Tulu 3 (Lambert
	// et al. 2024, arXiv:2411.15124), Eq. 6; TRL's sigmoid_norm (PR #5406).
	// Lengths are the scored completion tokens.
	"sigmoid_norm": func(x *Logps, p *Params) *tensor.Tensor {
		return normDelta(x).MulScalar(p.Beta).LogSigmoid().Neg()
	},
	// -sum log pi(y_w|x) / |y_w| over the batch: the NLL of the chosen
	// completions, mean over their tokens (TRL's sft loss; with sigmoid it
	// is RPO, Pang et al. 2024, arXiv:2404.19733).
	"sft": func(x *Logps, p *Params) *tensor.Tensor {
		return x.Chosen.Sum().Neg().Div(x.ChosenLen.Sum().ClampMin(1))
	},
}

// logratios returns c and r (B).
func logratios(x *Logps) (c, r *tensor.Tensor) {
	return x.Chosen.Sub(x.RefChosen), x.Rejected.Sub(x.RefRejected)
}

// delta is d = c - r (B).
func delta(x *Logps) *tensor.Tensor {
	c, r := logratios(x)
	return c.Sub(r)
}

// normDelta is c/|y_w| - r/|y_l| (B), lengths at least 1.
func normDelta(x *Logps) *tensor.Tensor {
	c, r := logratios(x)
	return c.Div(x.ChosenLen.ClampMin(1)).Sub(r.Div(x.RejectedLen.ClampMin(1)))
}

// Loss returns sum_k weights[k] * mean(loss_k): TRL's weighted
// combination of loss types.
func Loss(types []string, weights []float64, x *Logps, p *Params) (*tensor.Tensor, error) {
	if len(types) == 0 || len(types) != len(weights) {
		return nil, fmt.Errorf("dpo: %d loss types with %d weights", len(types), len(weights))
	}
	var total *tensor.Tensor
	for i, name := range types {
		f, ok := losses[name]
		if !ok {
			return nil, fmt.Errorf("dpo: unknown loss_type %q", name)
		}
		l := f(x, p).Mean().MulScalar(weights[i])
		if total == nil {
			total = l
		} else {
			total = total.Add(l)
		}
	}
	return total, nil
}
