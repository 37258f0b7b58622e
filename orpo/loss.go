package orpo

import (
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// Logps are the per-pair (B) sequence log-probabilities of the chosen and
// rejected completions under the model, summed over completion tokens, and
// the number of those tokens.
type Logps struct {
	Chosen, Rejected       *tensor.Tensor
	ChosenLen, RejectedLen *tensor.Tensor
	// ChosenRow and ChosenRowLen (B) are the log-probs summed over the
	// whole chosen row, prompt included, and its number of predicted tokens.
	ChosenRow, ChosenRowLen *tensor.Tensor
}

// Terms are the ORPO loss and its parts.
type Terms struct {
	Loss *tensor.Tensor // scalar: NLL - mean(beta * LogSigmoid)
	NLL  *tensor.Tensor // scalar: NLL of the chosen rows (prompt + completion), mean over their tokens
	// AvgChosen, AvgRejected (B) are the per-token averaged log-probs l_c, l_r.
	AvgChosen, AvgRejected *tensor.Tensor
	// LogOdds (B) is log odds(y_w|x) - log odds(y_l|x); LogSigmoid (B) is
	// log s(LogOdds), TRL's log_odds_ratio before averaging.
	LogOdds, LogSigmoid *tensor.Tensor
}

// maxAvgLogp keeps l below 0, where log(1 - e^l) is -inf: a model sure of
// every completion token (l == 0 in float32) would otherwise make the loss
// infinite.
const maxAvgLogp = -1e-7

// Loss is the ORPO objective (Hong et al. 2024, arXiv:2403.07691, Eq. 6-7):
//
//	L = L_SFT - mean(beta * log s(log_odds)),
//	log_odds = (l_c - l_r) - (log(1 - e^l_c) - log(1 - e^l_r)),
//
// with l the per-token averaged completion log-probs (Eq. 4-5: odds(y|x) =
// P/(1-P), P = e^l) and L_SFT the NLL of the chosen rows, prompt and
// completion, averaged over their tokens as TRL computes it since
// huggingface/trl#2527 (trl/experimental/orpo/orpo_trainer.py,
// concatenated_forward: "orpo chosen nll loss is computed over the full
// prompt and response").
func Loss(x *Logps, beta float64) Terms {
	var t Terms
	t.AvgChosen = x.Chosen.Div(x.ChosenLen.ClampMin(1))       // (B)
	t.AvgRejected = x.Rejected.Div(x.RejectedLen.ClampMin(1)) // (B)
	lc, lr := t.AvgChosen.ClampMax(maxAvgLogp), t.AvgRejected.ClampMax(maxAvgLogp)
	t.LogOdds = lc.Sub(lr).Sub(Log1mexp(lc).Sub(Log1mexp(lr)))
	t.LogSigmoid = t.LogOdds.LogSigmoid()
	t.NLL = x.ChosenRow.Sum().Neg().Div(x.ChosenRowLen.Sum().ClampMin(1))
	t.Loss = t.NLL.Sub(t.LogSigmoid.MulScalar(beta).Mean())
	return t
}

// Log1mexp returns log(1 - exp(x)) elementwise for x < 0, accurately
// (Mächler 2012, "Accurately computing log(1 - exp(-|a|))"):
// log(-expm1(x)) for x > -ln 2, log1p(-exp(x)) otherwise.
func Log1mexp(x *tensor.Tensor) *tensor.Tensor {
	near := x.GtScalar(-math.Ln2)
	return tensor.Where(near, x.Expm1().Neg().Log(), x.Exp().Neg().Log1p())
}
