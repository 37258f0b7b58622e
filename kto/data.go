package kto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Example is one tokenised KTO row: the prompt's tokens, the completion's
// (untruncated: rows are cut to max_length when collated) and the label.
type Example struct {
	Prompt, Completion []int32
	// KL is the completion of this row's KL row: the completion of its
	// neighbour in its batch (see AddKL); nil without the KL term.
	KL    []int32
	Label bool // true: desirable
	Src   datasets.Source
}

// unpairBlock is the number of pairs unpaired together: TRL's
// unpair_preference_dataset is a batched datasets.map, whose default
// batch_size is 1000, and each batch lists its chosen rows, then its
// rejected rows.
const unpairBlock = 1000

// Unpair turns preference pairs into unpaired rows as TRL's
// unpair_preference_dataset (trl/data_utils.py, _unpair_row) does: per
// block of 1000 pairs, every (prompt, chosen, true), then every (prompt,
// rejected, false).
func Unpair(prefs []datasets.Preference) []datasets.UnpairedPreference {
	out := make([]datasets.UnpairedPreference, 0, 2*len(prefs))
	for lo := 0; lo < len(prefs); lo += unpairBlock {
		block := prefs[lo:min(lo+unpairBlock, len(prefs))]
		for _, p := range block {
			out = append(out, datasets.UnpairedPreference{Prompt: p.Prompt, Completion: p.Chosen, PromptMessages: p.PromptMessages, CompletionMessages: p.ChosenMessages, Label: true, Src: p.Src})
		}
		for _, p := range block {
			out = append(out, datasets.UnpairedPreference{Prompt: p.Prompt, Completion: p.Rejected, PromptMessages: p.PromptMessages, CompletionMessages: p.RejectedMessages, Label: false, Src: p.Src})
		}
	}
	return out
}

// Rows returns a split's KTO rows: unpaired preference data as it is,
// preference pairs (chosen and rejected; an implicit prompt is extracted)
// unpaired, as TRL's KTOTrainer._prepare_dataset decides from the first
// record. paired reports which.
func Rows(d *datasets.Dataset) (rows []datasets.UnpairedPreference, paired bool, err error) {
	f, err := d.DetectFormat()
	if err != nil {
		return nil, false, err
	}
	switch f {
	case datasets.FormatPreference, datasets.FormatConversationalPreference, datasets.FormatShareGPTPreference:
		prefs, err := d.Preferences()
		if err != nil {
			return nil, true, err
		}
		return Unpair(prefs), true, nil
	}
	rows, err = d.UnpairedPreferences()
	return rows, false, err
}

// AddKL sets each example's KL completion as TRL does
// (kto_trainer.py, _prepare_dataset, add_kl_completion_ids): the
// completions rotated by one within each block of bs consecutive rows,
// (x_1, y_1), ..., (x_n, y_n) -> (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1}).
// bs is per_device_train_batch_size, for the eval split too; with
// sequential sampling the blocks are the training batches.
func AddKL(ex []Example, bs int) {
	for lo := 0; lo < len(ex); lo += bs {
		hi := min(lo+bs, len(ex))
		last := ex[hi-1].Completion
		for i := hi - 1; i > lo; i-- {
			ex[i].KL = ex[i-1].Completion
		}
		ex[lo].KL = last
	}
}

// ErrPromptTooLong marks a row whose prompt fills max_length.
var ErrPromptTooLong = errors.New("prompt fills max_length")

// Encode tokenises rows (preference.Encoder.EncodeUnpaired) and drops
// those whose prompt has max_length tokens or more, as TRL does (their
// completion would be cut away entirely); dropped counts them.
func Encode(enc *preference.Encoder, rows []datasets.UnpairedPreference, maxLength int, log zerolog.Logger, what string) (out []Example, dropped int, err error) {
	prog := metrics.NewProgress(log, "tokenizing "+what, len(rows))
	defer prog.Done()
	before := enc.Mismatches
	for _, r := range rows {
		p, c, err := enc.EncodeUnpaired(r)
		prog.Add(1)
		if err != nil {
			return nil, 0, fmt.Errorf("kto: %s: %w", r.Src, err)
		}
		if maxLength > 0 && len(p) >= maxLength {
			dropped++
			continue
		}
		out = append(out, Example{Prompt: p, Completion: c, Label: r.Label, Src: r.Src})
	}
	if dropped > 0 {
		log.Warn().Int("dropped", dropped).Int("kept", len(out)).Int("max_length", maxLength).Msgf("%s: rows whose prompt fills max_length dropped", what)
	}
	if n := enc.Mismatches - before; n > 0 {
		log.Warn().Int("rows", n).Msgf("%s: the prompt's tokens differ from the start of prompt+completion's (a token spans the boundary); the prompt's tokens are used, as TRL does", what)
	}
	if len(out) == 0 && len(rows) > 0 {
		return nil, dropped, fmt.Errorf("kto: %s: every row was dropped: prompts fill max_length %d (raise --max-length)", what, maxLength)
	}
	return out, dropped, nil
}

// Counts returns the numbers of desirable and undesirable examples.
func Counts(ex []Example) (desirable, undesirable int) {
	for _, e := range ex {
		if e.Label {
			desirable++
		} else {
			undesirable++
		}
	}
	return desirable, undesirable
}

// round2 is Python's round(x, 2): correctly rounded from x's exact binary
// value (0.665 is a little above 0.665, so 0.67), as FormatFloat rounds.
func round2(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	return v
}

// WeightAdvice returns TRL's warning when the classes are unbalanced and
// neither weight is in the range Eq. 8 of the KTO paper recommends
// (kto_trainer.py, _prepare_dataset: desirable_weight in
// [n_u*w_u/n_d, 1.33*n_u*w_u/n_d] or undesirable_weight in
// [n_d*w_d/n_u/1.33, n_d*w_d/n_u], bounds rounded to 2 places), or "".
func WeightAdvice(desirable, undesirable int, wd, wu float64) string {
	nd := float64(max(desirable, 1))
	nu := float64(max(desirable+undesirable-max(desirable, 1), 1))
	if nd == nu {
		return ""
	}
	dLo, dHi := round2(nu*wu/nd), round2(nu*wu/nd*1.33)
	uLo, uHi := round2(nd*wd/nu/1.33), round2(nd*wd/nu)
	if dLo <= wd && wd <= dHi || uLo <= wu && wu <= uHi {
		return ""
	}
	return fmt.Sprintf("You have different amounts of desirable/positive and undesirable/negative examples but the "+
		"weights on the desirable and undesirable losses don't seem to be in an ideal range. Based on your data, "+
		"we recommend EITHER desirable_weight in [%s, %s] or undesirable_weight in [%s, %s] (but NOT BOTH). "+
		"See the documentation on how to optimally set these weights.", pyFloat(dLo), pyFloat(dHi), pyFloat(uLo), pyFloat(uHi))
}

// pyFloat formats x as Python's str(float) does for these bounds (2.0, 0.67).
func pyFloat(x float64) string {
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// Batch holds B rows (prompt + completion, right-padded) and, with the KL
// term, their B KL rows (prompt + a neighbour's completion).
type Batch struct {
	B, T int
	IDs  []int64 // (B, T)
	// Completion[r*T+t] is 1 when token t+1 of row r is a completion token
	// (the logits at t predict it).
	Completion []float32 // (B, T)
	TK         int       // KL rows' length; 0 without them
	KLIDs      []int64   // (B, TK)
	KLMask     []float32 // (B, TK), as Completion
	Labels     []bool    // (B) true: desirable
	// Ref and RefKL (B) are precomputed reference log-probs of the rows and
	// the KL rows; nil: use the reference model.
	Ref, RefKL []float32
	tokens     int
}

// NumTokens counts the real tokens of the rows (TRL's num_tokens counts
// the attention mask of input_ids, not of the KL rows).
func (b *Batch) NumTokens() int { return b.tokens }

// rows lays out prompt + completion rows cut to maxLength (0: no limit),
// as TRL's DataCollatorForUnpairedPreference, padded with pad; it
// returns the ids (B, T), the shifted completion mask and the real tokens.
func rows(prompts, completions [][]int32, maxLength, pad int) (ids []int64, mask []float32, T, tokens int) {
	B := len(prompts)
	n := make([]int, B)
	for i := range B {
		n[i] = len(prompts[i]) + len(completions[i])
		if maxLength > 0 {
			n[i] = min(n[i], maxLength)
		}
		T = max(T, n[i])
	}
	ids, mask = make([]int64, B*T), make([]float32, B*T)
	for i := range B {
		row := ids[i*T : (i+1)*T]
		P := len(prompts[i])
		for t := range T {
			switch {
			case t >= n[i]:
				row[t] = int64(pad)
			case t < P:
				row[t] = int64(prompts[i][t])
			default:
				row[t] = int64(completions[i][t-P])
			}
		}
		for t := max(P-1, 0); t < n[i]-1; t++ {
			mask[i*T+t] = 1
		}
		tokens += n[i]
	}
	return ids, mask, T, tokens
}

// Collate builds a batch from examples: rows cut to maxLength, and KL rows
// when the examples carry KL completions.
func Collate(ex []Example, maxLength, pad int) *Batch {
	B := len(ex)
	ps, cs, ks := make([][]int32, B), make([][]int32, B), make([][]int32, B)
	b := &Batch{B: B, Labels: make([]bool, B)}
	for i, e := range ex {
		ps[i], cs[i], ks[i] = e.Prompt, e.Completion, e.KL
		b.Labels[i] = e.Label
	}
	b.IDs, b.Completion, b.T, b.tokens = rows(ps, cs, maxLength, pad)
	if B > 0 && ex[0].KL != nil {
		b.KLIDs, b.KLMask, b.TK, _ = rows(ps, ks, maxLength, pad)
	}
	return b
}

// Data serves examples, and their precomputed reference log-probs, to the
// trainer.
type Data struct {
	Examples  []Example
	MaxLength int
	Pad       int
	// Ref[i] holds example i's reference log-probs (row, KL row); nil when
	// a reference model is used.
	Ref [][2]float32
}

// Len is the number of examples.
func (d *Data) Len() int { return len(d.Examples) }

// Batch collates the examples idx, with their reference log-probs when precomputed.
func (d *Data) Batch(idx []int) (*Batch, error) {
	ex := make([]Example, len(idx))
	for i, j := range idx {
		ex[i] = d.Examples[j]
	}
	b := Collate(ex, d.MaxLength, d.Pad)
	if d.Ref != nil {
		b.Ref, b.RefKL = make([]float32, len(idx)), make([]float32, len(idx))
		for i, j := range idx {
			b.Ref[i], b.RefKL[i] = d.Ref[j][0], d.Ref[j][1]
		}
	}
	return b, nil
}

// seqLogps is the per-row summary of a causal LM's logits (R, T, V) over
// the completion tokens of rows ids (R, T) with shifted mask (R, T).
type seqLogps struct {
	Sum   *tensor.Tensor // (R) sum of log p(token) over completion tokens; gradients flow
	Count *tensor.Tensor // (R) completion tokens
	// LogitSum (R) sums, over completion positions, the mean logit over
	// the vocabulary; EntropySum (R) the entropy (TRL's logits/* and
	// entropy). Constants.
	LogitSum, EntropySum *tensor.Tensor
}

// completionLogps computes seqLogps (trl/trainer/kto_trainer.py,
// _compute_loss: selective_log_softmax of the shifted logits, masked by
// completion_mask[:, 1:], summed) of m on rows ids (R, T) through m's
// chunked LM head (model.Model.TokenLogps): the (R, T, V) logits never
// exist at once.
func completionLogps(m *model.Model, in *model.Input, ids []int64, mask []float32, R, T int) seqLogps {
	h := m.Hidden(in)
	dev := h.Device()
	r, t := int64(R), int64(T)
	id := tensor.Int64sOn(ids, dev, r, t)
	// targets: token t+1 at position t (the last position's target is unused: mask 0)
	next := tensor.Cat([]*tensor.Tensor{id.Narrow(1, 1, t-1), id.Narrow(1, 0, 1)}, 1) // (R, T)
	tok := m.TokenLogps(h, next, 1)
	mk := tensor.Float32sOn(mask, tok.Logp.DType(), dev, r, t)
	var out seqLogps
	out.Sum = tok.Logp.Mul(mk).SumDim(1, false)
	out.Count = mk.SumDim(1, false)
	tensor.NoGrad(func() {
		out.LogitSum = tok.LogitSum.DivScalar(float64(tok.Vocab)).Mul(mk).SumDim(1, false)
		out.EntropySum = tok.Entropy.Mul(mk).SumDim(1, false)
	})
	return out
}

// rowsInput is the model input for rows ids (R, T) on dev.
func rowsInput(ids []int64, R, T int, dev tensor.Device) *model.Input {
	return &model.Input{IDs: tensor.Int64sOn(ids, dev, int64(R), int64(T))}
}

// SequenceLogps returns the summed completion log-probs of b's rows and,
// when it has them, of its KL rows, under m, without gradients; with
// noAdapters, m's LoRA adapters are disabled (the policy as its own
// reference, as TRL's use_adapter does).
func SequenceLogps(m *model.Model, b *Batch, noAdapters bool) (main, kl []float32) {
	tensor.Tidy(func() {
		tensor.NoGrad(func() {
			in := rowsInput(b.IDs, b.B, b.T, m.Device)
			in.DisableAdapters = noAdapters
			main = completionLogps(m, in, b.IDs, b.Completion, b.B, b.T).Sum.ToDType(tensor.Float32).Float32s()
			if b.TK > 0 {
				in := rowsInput(b.KLIDs, b.B, b.TK, m.Device)
				in.DisableAdapters = noAdapters
				kl = completionLogps(m, in, b.KLIDs, b.KLMask, b.B, b.TK).Sum.ToDType(tensor.Float32).Float32s()
			}
		})
	})
	return main, kl
}

// PrecomputeRef computes every example's reference log-probs (row and KL
// row) in batches of bs, in dataset order (TRL's precompute_ref_log_probs).
func PrecomputeRef(ref *model.Model, noAdapters bool, d *Data, bs int, log zerolog.Logger, what string) (out [][2]float32, err error) {
	defer tensor.Recover(&err, "kto: precompute reference log-probs")
	prog := metrics.NewProgress(log, "reference log-probs "+what, d.Len())
	defer prog.Done()
	out = make([][2]float32, d.Len())
	for lo := 0; lo < d.Len(); lo += bs {
		hi := min(lo+bs, d.Len())
		b := Collate(d.Examples[lo:hi], d.MaxLength, d.Pad)
		main, kl := SequenceLogps(ref, b, noAdapters)
		for i := range hi - lo {
			out[lo+i][0] = main[i]
			if kl != nil {
				out[lo+i][1] = kl[i]
			}
		}
		prog.Add(hi - lo)
	}
	return out, nil
}

// newEncoder tokenises rows as TRL's KTOTrainer: the eos text appended to
// plain-text completions, prompt and prompt+completion tokenised jointly
// (preference.StyleDPO), no truncation (Collate cuts rows).
func newEncoder(tok *tokenizer.Tokenizer) *preference.Encoder {
	return &preference.Encoder{Tok: tok, Style: preference.StyleDPO, EOS: tok.EOS()}
}

// prepare turns a split into examples: rows (unpaired when paired),
// tokenised, over-long prompts dropped, KL completions added when the
// loss needs them.
func prepare(cfg *Config, enc *preference.Encoder, d *datasets.Dataset, log zerolog.Logger, what string) (ex []Example, dropped int, err error) {
	rs, paired, err := Rows(d)
	if err != nil {
		return nil, 0, fmt.Errorf("kto: %w", err)
	}
	datasets.WarnSkipped(log, d, false)
	if paired {
		log.Info().Int("pairs", len(rs)/2).Int("rows", len(rs)).Msgf("%s: preference pairs unpaired (chosen: label true, rejected: label false)", what)
	}
	ex, dropped, err = Encode(enc, rs, cfg.MaxLength, log, what)
	if err != nil {
		return nil, dropped, err
	}
	if cfg.calculateKL() {
		AddKL(ex, cfg.PerDeviceTrainBatchSize)
	}
	return ex, dropped, nil
}

// Preview returns the first n training examples exactly as Run tokenises
// them (rl data show), KL completions included, with the tokenizer,
// without loading models. It reads as many records as the first n rows
// depend on: a batch of them (their KL rows rotate within it), or, for
// preference pairs, a whole unpairing block.
func Preview(cfg Config, n int, log zerolog.Logger) ([]Example, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	d, _, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	f, err := d.DetectFormat()
	if err != nil {
		return nil, nil, err
	}
	k := max(n, cfg.PerDeviceTrainBatchSize)
	switch f {
	case datasets.FormatPreference, datasets.FormatConversationalPreference, datasets.FormatShareGPTPreference:
		k = unpairBlock
	}
	if d.Len() > k {
		idx := make([]int, k)
		for i := range idx {
			idx[i] = i
		}
		d = d.Select(idx)
	}
	ex, _, err := prepare(&cfg, newEncoder(tok), d, log, d.Name)
	if err != nil {
		return nil, nil, err
	}
	return ex[:min(n, len(ex))], tok, nil
}
