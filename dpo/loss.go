package dpo

import (
	"fmt"
	"math"

	"github.com/rlsuite/rl/shared/preference"
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
	// ChosenTokens (B), when set, is the chosen completions' plain summed
	// log-probs when Chosen is ld_alpha-weighted (the sft loss reads it).
	ChosenTokens *tensor.Tensor
	// Weights (B), when set, multiply each pair's loss: WPO's w(x, y_w) *
	// w(x, y_l) (use_weighting; see WPOWeights). Constants.
	Weights *tensor.Tensor
}

// Params are the settings the losses read.
type Params struct {
	Beta           float64
	LabelSmoothing float64
	// FDivergence is f_divergence_type ("" is reverse_kl), FAlphaCoef
	// f_alpha_divergence_coef, DiscopopTau discopop_tau.
	FDivergence string
	FAlphaCoef  float64
	DiscopopTau float64
}

// FDivergences lists the f_divergence_type values.
var FDivergences = []string{"reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"}

// scores returns the chosen and rejected scores (B): the log-ratios c, r
// passed through f'(u), u = pi/ref, of the f-divergence regulariser, with
// constants dropped (f-DPO, Wang et al. 2023, arXiv:2309.16240: the DPO
// margin with log u replaced by f'(u); the f' below are TRL's,
// trl/trainer/dpo_trainer.py, _compute_loss):
//
//	reverse_kl        log u                   = c
//	forward_kl        1 - 1/u                 -> -exp(-c)
//	js_divergence     log(2u/(1+u))           -> log s(c)
//	alpha_divergence  (u^(a-1) - 1)/(a-1)     -> exp((a-1)c)/(a-1), a = f_alpha_divergence_coef
//
// alpha_divergence with |a - 1| < 1e-6 is reverse_kl (its limit), and
// clamps (a-1)c at 80 before exp, as TRL does.
func scores(x *Logps, p *Params) (cs, rs *tensor.Tensor) {
	c, r := logratios(x)
	switch p.FDivergence {
	case "forward_kl":
		return c.Neg().Exp().Neg(), r.Neg().Exp().Neg()
	case "js_divergence":
		return c.LogSigmoid(), r.LogSigmoid()
	case "alpha_divergence":
		a := p.FAlphaCoef
		if math.Abs(a-1) < 1e-6 {
			return c, r
		}
		f := func(v *tensor.Tensor) *tensor.Tensor {
			return v.MulScalar(a - 1).ClampMax(80).Exp().MulScalar(1 / (a - 1))
		}
		return f(c), f(r)
	}
	return c, r
}

// lossFunc returns the per-pair loss (B), or a scalar that applies to
// every pair.
type lossFunc func(x *Logps, p *Params) *tensor.Tensor

// losses is TRL's loss_type table. Below, with policy and reference
// log-probs summed over the completion,
//
//	c = log pi(y_w|x) - log ref(y_w|x),  r = log pi(y_l|x) - log ref(y_l|x),
//	d = c - r,  b = beta,  s = sigmoid,
//
// where c and r are f_divergence_type's scores (see scores; the log-ratios
// themselves for reverse_kl, the default) except where an entry says it
// reads the plain log-ratios, as TRL's _compute_loss does.
var losses = map[string]lossFunc{
	// -log s(b*d): Rafailov et al. 2023 (arXiv:2305.18290), Eq. 7.
	"sigmoid": func(x *Logps, p *Params) *tensor.Tensor {
		return delta(x, p).MulScalar(p.Beta).LogSigmoid().Neg()
	},
	// relu(1 - b*d): the SLiC hinge loss (Zhao et al. 2023,
	// arXiv:2305.10425) on the DPO log-ratios, as in RSO (Liu et al. 2023,
	// arXiv:2309.06657), Eq. 12.
	"hinge": func(x *Logps, p *Params) *tensor.Tensor {
		return delta(x, p).MulScalar(-p.Beta).AddScalar(1).Relu()
	},
	// (c/|y_w| - r/|y_l| - 1/(2b))^2: IPO (Azar et al. 2023,
	// arXiv:2310.12036), Eq. 17 with tau = beta, on per-token averaged
	// log-ratios as TRL does (confirmed with the IPO authors, per TRL).
	"ipo": func(x *Logps, p *Params) *tensor.Tensor {
		return normDelta(x, p).AddScalar(-1 / (2 * p.Beta)).Square()
	},
	// (-(1-e) log s(b*d) + e log s(-b*d)) / (1-2e), e = label_smoothing:
	// the unbiased loss of robust DPO (Chowdhury et al. 2024,
	// arXiv:2403.00409) for labels flipped with probability e.
	"robust": func(x *Logps, p *Params) *tensor.Tensor {
		e := p.LabelSmoothing
		bd := delta(x, p).MulScalar(p.Beta)
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
		bd := delta(x, p).MulScalar(p.Beta)
		win := bd.Sigmoid().Mul(bd.LogSigmoid().AddScalar(-math.Log1p(-e)))
		lose := bd.Neg().Sigmoid().Mul(bd.Neg().LogSigmoid().AddScalar(-math.Log(e)))
		return win.Add(lose)
	},
	// -log s(b*c) - log s(-b*r): the paired form of Binary Classifier
	// Optimization (Jung et al. 2024, arXiv:2404.04656) as TRL computes it
	// since huggingface/trl#3906, without the running reward baseline
	// (trl/trainer/dpo_trainer.py, _compute_loss, loss_type "bco_pair").
	"bco_pair": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := scores(x, p)
		return c.MulScalar(p.Beta).LogSigmoid().Neg().Sub(r.MulScalar(-p.Beta).LogSigmoid())
	},
	// (c - 1/(2b))^2 + (r + 1/(2b))^2: SPPO (Wu et al. 2024,
	// arXiv:2405.00675), Eq. 4.7 with the hard win probability (1 for the
	// chosen, 0 for the rejected).
	"sppo_hard": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := scores(x, p)
		h := 1 / (2 * p.Beta)
		return c.AddScalar(-h).Square().Add(r.AddScalar(h).Square())
	},
	// -log s(b*c) - 0.5 log s(-b*c) - 0.5 log s(-b*r): NCA for pairwise
	// preferences (Chen et al. 2024, arXiv:2402.05369).
	"nca_pair": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := scores(x, p)
		bc, br := c.MulScalar(p.Beta), r.MulScalar(p.Beta)
		return bc.LogSigmoid().Neg().
			Sub(bc.Neg().LogSigmoid().MulScalar(0.5)).
			Sub(br.Neg().LogSigmoid().MulScalar(0.5))
	},
	// (1 - s(b*c)) + s(b*r): APO-zero (D'Oosterlinck et al. 2024,
	// arXiv:2408.06266), Eq. 7: raise the chosen, lower the rejected. On
	// the plain log-ratios whatever f_divergence_type, as TRL.
	"apo_zero": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		return c.MulScalar(p.Beta).Sigmoid().Neg().AddScalar(1).Add(r.MulScalar(p.Beta).Sigmoid())
	},
	// s(b*c) + (1 - s(b*d)): APO-down (D'Oosterlinck et al. 2024), Eq. 8:
	// lower the chosen, the rejected more. c is the plain log-ratio, d the
	// score margin, as TRL.
	"apo_down": func(x *Logps, p *Params) *tensor.Tensor {
		c, _ := logratios(x)
		return c.MulScalar(p.Beta).Sigmoid().Add(delta(x, p).MulScalar(p.Beta).Sigmoid().Neg().AddScalar(1))
	},
	// -(1-e) log s(b*q) - e log s(-b*q), q = sort(log pi(y_w) - log
	// pi(y_l)) - sort(log ref(y_w) - log ref(y_l)) over the batch: AOT,
	// paired (Melnyk et al. 2024, arXiv:2406.05882: stochastic dominance
	// of the chosen margins by sorted quantiles, the one-dimensional
	// optimal transport, with the logistic loss as TRL writes it). On raw
	// log-probs whatever f_divergence_type, as TRL.
	"aot": func(x *Logps, p *Params) *tensor.Tensor {
		pol, _ := x.Chosen.Sub(x.Rejected).Sort(0, false)
		ref, _ := x.RefChosen.Sub(x.RefRejected).Sort(0, false)
		return smoothedSigmoid(pol.Sub(ref), p)
	},
	// -(1-e) log s(b*q) - e log s(-b*q), q = sort(c) - sort(r): AOT,
	// unpaired (Melnyk et al. 2024: the chosen log-ratios' quantiles
	// dominate the rejected ones'), on the plain log-ratios, as TRL.
	"aot_unpaired": func(x *Logps, p *Params) *tensor.Tensor {
		c, r := logratios(x)
		cs, _ := c.Sort(0, false)
		rs, _ := r.Sort(0, false)
		return smoothedSigmoid(cs.Sub(rs), p)
	},
	// (1 - m) * (-log s(b*d)) + m * exp(-b*d), m = s(b*d/tau): DiscoPOP,
	// the log-ratio modulated loss (Chris Lu et al. 2024,
	// arXiv:2406.08414, Eq. 5), tau = discopop_tau.
	"discopop": func(x *Logps, p *Params) *tensor.Tensor {
		z := delta(x, p).MulScalar(p.Beta)
		m := z.DivScalar(p.DiscopopTau).Sigmoid()
		logistic := z.LogSigmoid().Neg()
		return logistic.Mul(m.Neg().AddScalar(1)).Add(z.Neg().Exp().Mul(m))
	},
	// -log s(b*(c/|y_w| - r/|y_l|)): length-normalised DPO, Tulu 3 (Lambert
	// et al. 2024, arXiv:2411.15124), Eq. 6; TRL's sigmoid_norm (PR #5406).
	// Lengths are the scored completion tokens.
	"sigmoid_norm": func(x *Logps, p *Params) *tensor.Tensor {
		return normDelta(x, p).MulScalar(p.Beta).LogSigmoid().Neg()
	},
	// -sum log pi(y_w|x) / |y_w| over the batch: the NLL of the chosen
	// completions, mean over their tokens (TRL's sft loss; with sigmoid it
	// is RPO, Pang et al. 2024, arXiv:2404.19733). Unweighted by ld_alpha,
	// as TRL's cross-entropy.
	"sft": func(x *Logps, p *Params) *tensor.Tensor {
		chosen := x.Chosen
		if x.ChosenTokens != nil {
			chosen = x.ChosenTokens
		}
		return chosen.Sum().Neg().Div(x.ChosenLen.Sum().ClampMin(1))
	},
}

// smoothedSigmoid is -(1-e) log s(b*q) - e log s(-b*q), e = label_smoothing.
func smoothedSigmoid(q *tensor.Tensor, p *Params) *tensor.Tensor {
	bq := q.MulScalar(p.Beta)
	return bq.LogSigmoid().MulScalar(-(1 - p.LabelSmoothing)).Sub(bq.Neg().LogSigmoid().MulScalar(p.LabelSmoothing))
}

// logratios returns the log-ratios c and r (B).
func logratios(x *Logps) (c, r *tensor.Tensor) {
	return x.Chosen.Sub(x.RefChosen), x.Rejected.Sub(x.RefRejected)
}

// delta is d = c - r (B), on the f-divergence scores.
func delta(x *Logps, p *Params) *tensor.Tensor {
	c, r := scores(x, p)
	return c.Sub(r)
}

// normDelta is c/|y_w| - r/|y_l| (B) on the scores, lengths at least 1.
func normDelta(x *Logps, p *Params) *tensor.Tensor {
	c, r := scores(x, p)
	return c.Div(x.ChosenLen.ClampMin(1)).Sub(r.Div(x.RejectedLen.ClampMin(1)))
}

// WPOWeights returns WPO's weight of each row (2B), a constant (Zhou et
// al. 2024, arXiv:2406.11827, Eq. 2; TRL's use_weighting):
//
//	w(x, y) = exp(1/|y| sum_t [log pi(y_t|x, y<t) - log sum_v pi(v|x, y<t)^2]),
//
// log sum_v pi(v)^2 = logsumexp(2z) - 2 logsumexp(z) for the logits z;
// perToken (2B, T) holds the completion tokens' log-probs, 0 elsewhere
// (preference.Logps.PerToken).
func WPOWeights(logits, perToken *tensor.Tensor, b *preference.Batch) *tensor.Tensor {
	var w *tensor.Tensor
	tensor.NoGrad(func() {
		z := logits.Detach()
		if z.DType() != tensor.Float32 && z.DType() != tensor.Float64 {
			z = z.ToDType(tensor.Float32)
		}
		R, T := int64(2*b.B), int64(b.T)
		mask := tensor.Float32sOn(b.Completion, perToken.DType(), perToken.Device(), R, T)
		logDenom := z.MulScalar(2).Logsumexp(-1, false).Sub(z.Logsumexp(-1, false).MulScalar(2)).ToDType(perToken.DType()) // (2B, T)
		aligned := perToken.Detach().Sub(logDenom).Mul(mask)
		w = aligned.SumDim(1, false).Div(mask.SumDim(1, false).ClampMin(1)).Exp()
	})
	return w
}

// Loss returns sum_k weights[k] * mean(w * loss_k): TRL's weighted
// combination of loss types, w the WPO weights when x.Weights is set.
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
		l := f(x, p)
		if x.Weights != nil {
			l = l.Mul(x.Weights) // (B)
		}
		l = l.Mean().MulScalar(weights[i])
		if total == nil {
			total = l
		} else {
			total = total.Add(l)
		}
	}
	return total, nil
}
