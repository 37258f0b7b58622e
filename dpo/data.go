package dpo

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Batch is a preference batch (2B rows, chosen first) with, when they were
// precomputed, the reference log-probs of its rows.
type Batch struct {
	*preference.Batch
	Ref []float32 // (2B) summed reference log-probs, rows as in Batch; nil: use the reference model
}

// Data serves pairs, and their precomputed reference log-probs, to the trainer.
type Data struct {
	Pairs []preference.Pair
	Pad   int
	// Ref[i] holds pair i's reference log-probs (chosen, rejected); nil
	// when a reference model is used.
	Ref [][2]float32
}

// Len is the number of pairs.
func (d *Data) Len() int { return len(d.Pairs) }

// Batch collates the pairs idx, with their reference log-probs when precomputed.
func (d *Data) Batch(idx []int) (*Batch, error) {
	ps := make([]preference.Pair, len(idx))
	for i, j := range idx {
		ps[i] = d.Pairs[j]
	}
	b := &Batch{Batch: preference.Collate(ps, d.Pad)}
	if d.Ref != nil {
		b.Ref = make([]float32, 2*len(idx))
		for i, j := range idx {
			b.Ref[i], b.Ref[len(idx)+i] = d.Ref[j][0], d.Ref[j][1]
		}
	}
	return b, nil
}

// SequenceLogps returns the summed completion log-probs of each row of b
// (2B) under m, without gradients; LD-DPO-weighted when ldAlpha is set.
func SequenceLogps(m *model.Model, b *preference.Batch, ldAlpha *float64) []float32 {
	return sequenceLogps(m, b, false, ldAlpha)
}

// sequenceLogps is SequenceLogps, with m's LoRA adapters disabled when
// noAdapters is set (the policy as its own reference).
func sequenceLogps(m *model.Model, b *preference.Batch, noAdapters bool, ldAlpha *float64) []float32 {
	var out []float32
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			in := b.Inputs(m.Device)
			in.DisableAdapters = noAdapters
			lp := preference.HeadCompletionLogps(m, m.Hidden(in), b)
			out = ldSum(lp, b, ldAlpha).ToDType(tensor.Float32).Float32s()
		})
	})
	return out
}

// ldSum is each row's completion log-prob (2B): the plain sum, or with
// ldAlpha set LD-DPO's shared + alpha * tail (preference.Batch.LDWeights).
func ldSum(lp preference.Logps, b *preference.Batch, ldAlpha *float64) *tensor.Tensor {
	if ldAlpha == nil {
		return lp.Sum
	}
	w := tensor.Float32sOn(b.LDWeights(*ldAlpha), lp.PerToken.DType(), lp.PerToken.Device(), int64(2*b.B), int64(b.T))
	return lp.PerToken.Mul(w).SumDim(1, false)
}

// PrecomputeRef computes every pair's reference log-probs in batches of bs
// (TRL's precompute_ref_log_probs).
func PrecomputeRef(ref *model.Model, pairs []preference.Pair, pad, bs int, ldAlpha *float64, log zerolog.Logger, what string) (out [][2]float32, err error) {
	defer tensor.Recover(&err, "dpo: precompute reference log-probs")
	prog := metrics.NewProgress(log, "reference log-probs "+what, len(pairs))
	defer prog.Done()
	out = make([][2]float32, len(pairs))
	for lo := 0; lo < len(pairs); lo += bs {
		hi := min(lo+bs, len(pairs))
		b := preference.Collate(pairs[lo:hi], pad)
		lp := SequenceLogps(ref, b, ldAlpha)
		for i := range hi - lo {
			out[lo+i] = [2]float32{lp[i], lp[hi-lo+i]}
		}
		prog.Add(hi - lo)
	}
	return out, nil
}

// EncodePairs tokenises preference pairs (see preference.Encoder.EncodeAll):
// pairs that do not fit max_length under the truncation mode are dropped
// and counted.
func EncodePairs(enc *preference.Encoder, prefs []datasets.Preference, log zerolog.Logger, what string) ([]preference.Pair, error) {
	out, _, err := enc.EncodeAll(prefs, log, what)
	if err == nil && len(out) == 0 && len(prefs) > 0 {
		err = fmt.Errorf("%s: %s: every pair was dropped: prompts fill max_length %d (raise it or use truncation_mode keep_end)", "dpo", what, enc.MaxLength)
	}
	return out, err
}

// newEncoder tokenises pairs as TRL's DPOTrainer (preference.StyleDPO).
func newEncoder(cfg *Config, tok *tokenizer.Tokenizer) *preference.Encoder {
	return &preference.Encoder{Tok: tok, Style: preference.StyleDPO, MaxLength: cfg.MaxLength, TruncationMode: cfg.TruncationMode, EOS: tok.EOS()}
}

// Preview returns the first n training pairs exactly as Run tokenises them
// (rl data show), with the tokenizer and pad id, without loading models.
func Preview(cfg Config, n int, log zerolog.Logger) ([]preference.Pair, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	d, _, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	pairs, err := newEncoder(&cfg, tok).Preview(d, n, log)
	if err != nil {
		return nil, nil, fmt.Errorf("dpo: %w", err)
	}
	return pairs, tok, nil
}
