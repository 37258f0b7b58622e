package generate

import (
	"math"

	"github.com/rlsuite/rl/shared/tensor"
)

// pick chooses the next token of each row of logits (R, V), on the
// logits' device: only the R chosen ids come back to Go. The steps and
// their order are transformers' logits processors and warpers:
//
//  1. repetition penalty (Keskar et al. 2019, arXiv:1909.05858, Eq. 1 as
//     RepetitionPenaltyLogitsProcessor): where seen (R, V) is true the
//     logit is divided by the penalty when positive, multiplied when
//     negative;
//  2. greedy: the argmax (the first one on ties); otherwise
//  3. temperature: logits / T;
//  4. top-k: the k largest logits (TopKLogitsWarper);
//  5. top-p, nucleus sampling (Holtzman et al. 2020, arXiv:1904.09751,
//     Eq. 2-3): in decreasing probability, the smallest prefix whose
//     mass reaches p (at least one token), as TopPLogitsWarper;
//  6. the multinomial draw by the inverse of the cumulative distribution:
//     with u[r] uniform in [0, 1), row r takes the first token, in the
//     order of step 4-5 (decreasing logit; vocabulary order when there is
//     no truncation), whose cumulative probability exceeds u[r] times the
//     row's total.
//
// The uniforms come from the caller's seeded Go generator, so the tokens
// depend on the seed only, not on libtorch's global generator or the
// device's. u is ignored when cfg.DoSample is false.
func pick(logits, seen *tensor.Tensor, u []float64, cfg Config) []int64 {
	var out []int64
	tensor.Tidy(func() {
		lg := logits
		if lg.DType() != tensor.Float32 {
			lg = lg.ToDType(tensor.Float32)
		}
		if p := cfg.RepetitionPenalty; seen != nil && p != 0 && p != 1 {
			pen := tensor.Where(lg.LtScalar(0), lg.MulScalar(p), lg.DivScalar(p))
			lg = tensor.Where(seen, pen, lg)
		}
		if !cfg.DoSample {
			out = lg.Argmax(-1, false).To(tensor.Int64, tensor.CPU).Int64s()
			return
		}
		R, V := lg.Size(0), lg.Size(1)
		if !cfg.Unfused && (cfg.TopK == 0 || int64(cfg.TopK) >= V) && cfg.TopP >= 1 && lg.Device() == tensor.CPU {
			// steps 3 and 6 in one pass a row (no truncation: vocabulary order)
			out = tensor.SampleRows(lg, u, cfg.Temperature)
			return
		}
		if cfg.Temperature != 1 {
			lg = lg.DivScalar(cfg.Temperature)
		}
		var order *tensor.Tensor // (R, K) vocabulary ids of the columns of lg, nil: all, in order
		switch {
		case cfg.TopK > 0 && int64(cfg.TopK) < V:
			lg, order = lg.Topk(int64(cfg.TopK), -1) // sorted, largest first
		case cfg.TopP < 1:
			lg, order = lg.Sort(-1, true)
		}
		probs := lg.Softmax(-1)
		if cfg.TopP < 1 {
			// keep token j while the mass before it is below top_p: the
			// first token always, and the one that reaches top_p
			before := probs.Cumsum(-1).Sub(probs)
			probs = probs.MaskedFill(before.GeScalar(cfg.TopP), 0)
		}
		cum := probs.Cumsum(-1)
		K := cum.Size(1)
		uf := make([]float32, R)
		for i, v := range u {
			// float32(v) can round up to 1; below 1, u * total < total
			uf[i] = min(float32(v), math.Nextafter32(1, 0))
		}
		target := tensor.Float32sOn(uf, tensor.Float32, lg.Device(), R, 1).Mul(cum.Narrow(1, K-1, 1))
		// the number of columns whose cumulative mass is <= the target is
		// the drawn column (clamped: rounding can leave target == total),
		// found by binary search (a cumulative sum of non-negative
		// values does not decrease), not by comparing all K columns
		j := cum.SearchsortedRight(target).ClampMax(float64(K - 1))
		if order != nil {
			j = order.Gather(1, j)
		}
		out = j.To(tensor.Int64, tensor.CPU).Int64s()
	})
	return out
}
