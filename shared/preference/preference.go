// Package preference tokenises preference pairs and batches them for the
// preference trainers (reward, DPO, ORPO, CPO): chosen and rejected go through a
// model in one concatenated batch, chosen rows first.
//
// Each trainer tokenises pairs as its TRL trainer does (Style): prompt and
// prompt+completion are tokenised jointly and the completion is what
// follows the prompt's tokens, never tokenised on its own, so a word
// split across the boundary, or a normalizer that prepends "▁" (Llama-2,
// Mistral v0.1), gives the tokens of the whole text. Chat templates are
// rendered and tokenised as transformers' apply_chat_template(tokenize=True)
// does: without adding the tokenizer's special tokens, since the template
// writes its own (bos_token).
package preference

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Pair is a tokenised preference pair: the two whole rows the model sees
// (prompt + completion) and where each row's completion starts.
type Pair struct {
	Chosen, Rejected           []int32
	ChosenStart, RejectedStart int // index of the first completion token of each row
	Margin                     *float64
	Src                        datasets.Source
	// ChosenTypes and RejectedTypes are the token type ids of each row
	// (an encoder's pair template: 0 for the prompt, 1 for the completion);
	// nil for decoders.
	ChosenTypes, RejectedTypes []int8
}

// PromptIDs returns the chosen row's prompt tokens.
func (p Pair) PromptIDs() []int32 { return p.Chosen[:p.ChosenStart] }

// ChosenIDs and RejectedIDs return the completion tokens of each row.
func (p Pair) ChosenIDs() []int32   { return p.Chosen[p.ChosenStart:] }
func (p Pair) RejectedIDs() []int32 { return p.Rejected[p.RejectedStart:] }

// Truncation says which end of an over-long sequence survives.
const (
	KeepEnd   = "keep_end"   // keep the last max_length tokens of each row
	KeepStart = "keep_start" // keep the first max_length tokens of each row (TRL DPO's default)
	Drop      = "drop"       // drop the pair (TRL RewardTrainer)
)

// Style is how a trainer turns a pair into rows; each mirrors its TRL trainer.
type Style int

const (
	// StyleDPO is TRL's DPOTrainer (trl/trainer/dpo_trainer.py,
	// _prepare_dataset's add_eos and tokenize_fn): eos appended to plain-text
	// completions as a string; prompt and prompt+completion tokenised with
	// the tokenizer's special tokens (plain text) or the template's own
	// (conversations); a row is prompt_ids + (prompt+completion)_ids[len(prompt_ids):];
	// rows over max_length are cut per row (DataCollatorForPreference), and
	// with keep_start a prompt of max_length tokens or more drops the pair.
	StyleDPO Style = iota
	// StyleReward is TRL's RewardTrainer (trl/trainer/reward_trainer.py,
	// add_eos and tokenize_fn): as StyleDPO, but a row is the whole
	// prompt+completion encoding, and a pair with a row over max_length is
	// dropped.
	StyleReward
	// StyleORPO is TRL's ORPOTrainer, and its CPOTrainer, whose tokenize_row
	// and build_tokenized_answer are the same code
	// (trl/experimental/orpo/orpo_trainer.py,
	// tokenize_row and build_tokenized_answer; trl/experimental/utils.py
	// add_bos_token_if_needed/add_eos_token_if_needed): conversations are
	// rendered to text first (maybe_apply_chat_template: the prompt is the
	// common prefix of the renderings), text is tokenised without special
	// tokens, the tokenizer's bos is prepended and its eos appended to every
	// row (conversations too) when not already there; the completion starts
	// at the prompt's length, one earlier when the last prompt token merged
	// into the completion.
	StyleORPO
)

// Encoder tokenises pairs.
type Encoder struct {
	Tok       *tokenizer.Tokenizer
	Style     Style
	MaxLength int // 0: no limit
	// TruncationMode is KeepStart or KeepEnd (StyleDPO; StyleORPO cuts the
	// completions, StyleReward drops).
	TruncationMode string
	EOS            int // the eos appended to completions; -1: none

	// Mismatches counts pairs whose prompt tokens differ from the start of
	// the prompt+completion tokens (TRL warns of the same).
	Mismatches int
}

func (e *Encoder) ids(s string, special bool) ([]int32, error) {
	v, err := e.Tok.Encode(s, special)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out, nil
}

// ErrTooLong marks a pair dropped for length: any pair over max_length with
// TruncationMode Drop, or a prompt that leaves no room with KeepStart.
var ErrTooLong = errors.New("preference pair longer than max_length")

// texts returns the prompt and the two whole texts (prompt + completion)
// to tokenise, and whether the tokenizer's special tokens are added.
func (e *Encoder) texts(p datasets.Preference) (prompt, chosen, rejected string, special bool, err error) {
	if p.ChosenMessages != nil {
		tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
		if err != nil {
			return "", "", "", false, err
		}
		sp := e.Tok.TemplateSpecials()
		if prompt, err = tmpl.Apply(p.PromptMessages, true, sp); err != nil {
			return "", "", "", false, err
		}
		if chosen, err = tmpl.Apply(append(slices.Clone(p.PromptMessages), p.ChosenMessages...), false, sp); err != nil {
			return "", "", "", false, err
		}
		if rejected, err = tmpl.Apply(append(slices.Clone(p.PromptMessages), p.RejectedMessages...), false, sp); err != nil {
			return "", "", "", false, err
		}
		if e.Style == StyleORPO {
			// maybe_apply_chat_template: the prompt is the common prefix of
			// the three renderings (trl/data_utils.py, apply_chat_template)
			prompt = prompt[:commonPrefix(prompt, chosen)]
			prompt = prompt[:commonPrefix(prompt, rejected)]
		}
		return prompt, chosen, rejected, false, nil
	}
	c, r := p.Chosen, p.Rejected
	if e.Style != StyleORPO && e.EOS >= 0 {
		if eos, ok := e.Tok.IDToToken(e.EOS); ok {
			if !strings.HasSuffix(c, eos) {
				c += eos
			}
			if !strings.HasSuffix(r, eos) {
				r += eos
			}
		}
	}
	return p.Prompt, p.Prompt + c, p.Prompt + r, e.Style != StyleORPO, nil
}

// commonPrefix is the length in bytes of the longest common prefix of a and
// b that ends on a character boundary.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	for n > 0 && n < len(a) && !utf8.RuneStart(a[n]) {
		n--
	}
	return n
}

// Encode tokenises one pair in the encoder's Style.
func (e *Encoder) Encode(p datasets.Preference) (Pair, error) {
	promptText, chosenText, rejectedText, special, err := e.texts(p)
	if err != nil {
		return Pair{}, err
	}
	prompt, err := e.ids(promptText, special)
	if err != nil {
		return Pair{}, err
	}
	var out Pair
	if out.Chosen, err = e.ids(chosenText, special); err != nil {
		return Pair{}, err
	}
	if out.Rejected, err = e.ids(rejectedText, special); err != nil {
		return Pair{}, err
	}
	mismatch := false
	row := func(full []int32) ([]int32, int) {
		ok := len(full) >= len(prompt) && slices.Equal(full[:len(prompt)], prompt)
		mismatch = mismatch || !ok
		switch e.Style {
		case StyleDPO:
			return slices.Concat(prompt, full[min(len(prompt), len(full)):]), len(prompt)
		case StyleORPO:
			start := len(prompt)
			if !ok {
				start-- // the last prompt token merged with the completion's first
			}
			return full, max(0, min(start, len(full)))
		default:
			return full, min(len(prompt), len(full))
		}
	}
	out.Chosen, out.ChosenStart = row(out.Chosen)
	out.Rejected, out.RejectedStart = row(out.Rejected)
	if mismatch {
		e.Mismatches++
	}
	if e.Style == StyleORPO {
		out.Chosen, out.ChosenStart = e.bosEOS(out.Chosen, out.ChosenStart)
		out.Rejected, out.RejectedStart = e.bosEOS(out.Rejected, out.RejectedStart)
	}
	if len(out.Chosen) == out.ChosenStart || len(out.Rejected) == out.RejectedStart {
		return Pair{}, errors.New("a completion encodes to no tokens")
	}
	out.Margin, out.Src = p.Margin, p.Src
	return e.truncate(out)
}

// EncodeUnpaired tokenises one prompt and completion of an unpaired
// preference dataset as Encode tokenises a pair's chosen side (TRL's
// KTOTrainer, _prepare_dataset, tokenises as DPOTrainer: StyleDPO) and
// returns the prompt's tokens and the completion's, untruncated: unpaired
// trainers cut rows when they collate them (KTO's KL rows put a prompt
// before another row's completion).
func (e *Encoder) EncodeUnpaired(u datasets.UnpairedPreference) (prompt, completion []int32, err error) {
	c := *e
	c.MaxLength = 0
	p, err := c.Encode(datasets.Preference{
		Prompt: u.Prompt, Chosen: u.Completion, Rejected: u.Completion,
		PromptMessages: u.PromptMessages, ChosenMessages: u.CompletionMessages, RejectedMessages: u.CompletionMessages,
		Src: u.Src,
	})
	e.Mismatches = c.Mismatches
	if err != nil {
		return nil, nil, err
	}
	return p.PromptIDs(), p.ChosenIDs(), nil
}

// bosEOS prepends the tokenizer's bos and appends eos unless already there
// (ORPO's add_bos_token_if_needed, add_eos_token_if_needed).
func (e *Encoder) bosEOS(row []int32, start int) ([]int32, int) {
	if bos := e.Tok.BOS(); bos >= 0 && (start == 0 || row[0] != int32(bos)) {
		row = slices.Insert(row, 0, int32(bos))
		start++
	}
	if e.EOS >= 0 && (len(row) == start || row[len(row)-1] != int32(e.EOS)) {
		row = append(row, int32(e.EOS))
	}
	return row, start
}

func (e *Encoder) truncate(p Pair) (Pair, error) {
	if e.MaxLength <= 0 || max(len(p.Chosen), len(p.Rejected)) <= e.MaxLength {
		return p, nil
	}
	M := e.MaxLength
	switch {
	case e.Style == StyleReward || e.TruncationMode == Drop:
		return Pair{}, ErrTooLong
	case e.Style == StyleORPO:
		// TRL cuts each completion to max_length - longer_response_length
		// tokens, which does not bound the row by max_length (and empties
		// completions); rl cuts the completions' ends to fit, dropping the
		// pair when the prompt alone fills max_length.
		if p.ChosenStart >= M || p.RejectedStart >= M {
			return Pair{}, fmt.Errorf("%w: a prompt of %d tokens leaves no room for a completion within max_length %d", ErrTooLong, p.ChosenStart, M)
		}
		p.Chosen, p.Rejected = p.Chosen[:min(len(p.Chosen), M)], p.Rejected[:min(len(p.Rejected), M)]
	case e.TruncationMode == KeepEnd:
		cut := func(row []int32, start int) ([]int32, int) {
			if len(row) <= M {
				return row, start
			}
			n := len(row) - M
			return row[n:], max(0, start-n)
		}
		p.Chosen, p.ChosenStart = cut(p.Chosen, p.ChosenStart)
		p.Rejected, p.RejectedStart = cut(p.Rejected, p.RejectedStart)
	default: // KeepStart; the dataset drops prompts of max_length tokens or more
		if p.ChosenStart >= M {
			return Pair{}, fmt.Errorf("%w: prompt of %d tokens leaves no room for a completion within max_length %d (truncation_mode keep_start)", ErrTooLong, p.ChosenStart, M)
		}
		p.Chosen, p.Rejected = p.Chosen[:min(len(p.Chosen), M)], p.Rejected[:min(len(p.Rejected), M)]
	}
	return p, nil
}

// EncodeAll tokenises pairs, counting (and logging) those dropped for length.
func (e *Encoder) EncodeAll(prefs []datasets.Preference, log zerolog.Logger, what string) ([]Pair, int, error) {
	prog := metrics.NewProgress(log, "tokenizing "+what, len(prefs))
	defer prog.Done()
	var out []Pair
	dropped := 0
	before := e.Mismatches
	for _, p := range prefs {
		x, err := e.Encode(p)
		prog.Add(1)
		if errors.Is(err, ErrTooLong) {
			dropped++
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("preference: %s: %w", p.Src, err)
		}
		out = append(out, x)
	}
	if dropped > 0 {
		log.Warn().Int("dropped", dropped).Int("kept", len(out)).Int("max_length", e.MaxLength).Str("truncation_mode", e.TruncationMode).Msgf("%s: pairs too long for max_length dropped", what)
	}
	if n := e.Mismatches - before; n > 0 {
		log.Warn().Int("pairs", n).Msgf("%s: the prompt's tokens differ from the start of prompt+completion's (a token spans the boundary); the prompt's tokens are used, as TRL does", what)
	}
	return out, dropped, nil
}

// Preview tokenises the first n pairs of d as EncodeAll does for a
// trainer's Run (rl data show).
func (e *Encoder) Preview(d *datasets.Dataset, n int, log zerolog.Logger) ([]Pair, error) {
	if d.Len() > n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		d = d.Select(idx)
	}
	prefs, err := d.Preferences()
	if err != nil {
		return nil, err
	}
	pairs, _, err := e.EncodeAll(prefs, log, d.Name)
	return pairs, err
}

// Batch holds B pairs as 2B right-padded rows: rows 0..B-1 are
// prompt+chosen, rows B..2B-1 prompt+rejected.
type Batch struct {
	B, T int
	IDs  []int64 // (2B, T)
	// Completion[r*T+t] is 1 when token t+1 of row r is a completion token,
	// i.e. the logits at position t predict a completion token.
	Completion []float32 // (2B, T)
	// Last[r] is the index of row r's last real token.
	Last      []int64
	Margins   []float64 // per pair; 0 when absent
	HasMargin bool
	// TypeIDs (2B, T) are the rows' token type ids (pads 0) when the pairs
	// carry them (encoders), else nil.
	TypeIDs []int64
	tokens  int
}

// NumTokens counts real tokens in the batch.
func (b *Batch) NumTokens() int { return b.tokens }

// Collate builds a batch from pairs, padding with pad.
func Collate(pairs []Pair, pad int) *Batch {
	B := len(pairs)
	T := 0
	for _, p := range pairs {
		T = max(T, len(p.Chosen), len(p.Rejected))
	}
	b := &Batch{B: B, T: T, IDs: make([]int64, 2*B*T), Completion: make([]float32, 2*B*T), Last: make([]int64, 2*B), Margins: make([]float64, B)}
	for i, p := range pairs {
		if p.Margin != nil {
			b.Margins[i] = *p.Margin
			b.HasMargin = true
		}
		for side, seq := range [][]int32{p.Chosen, p.Rejected} {
			start := [2]int{p.ChosenStart, p.RejectedStart}[side]
			r := i + side*B
			row := b.IDs[r*T : (r+1)*T]
			n := len(seq)
			for t, id := range seq {
				row[t] = int64(id)
			}
			for t := n; t < T; t++ {
				row[t] = int64(pad)
			}
			for t := max(start-1, 0); t < n-1; t++ {
				b.Completion[r*T+t] = 1
			}
			b.Last[r] = int64(n - 1)
			b.tokens += n
			if types := [2][]int8{p.ChosenTypes, p.RejectedTypes}[side]; types != nil {
				if b.TypeIDs == nil {
					b.TypeIDs = make([]int64, 2*B*T)
				}
				for t, v := range types {
					b.TypeIDs[r*T+t] = int64(v)
				}
			}
		}
	}
	return b
}

// LDWeights returns the (2B, T) weights of LD-DPO's log-probs
// (arXiv:2409.06411; TRL's ld_alpha, trl/trainer/dpo_trainer.py,
// _compute_loss): at the completion positions of a pair's two rows, 1 for
// the first min(|y_w|, |y_l|) completion tokens (the shared, "public"
// part) and alpha past them (the longer row's "verbose" tail); 0 elsewhere.
func (b *Batch) LDWeights(alpha float64) []float32 {
	R, T := 2*b.B, b.T
	n := make([]int, R) // completion tokens per row
	for r := range R {
		for t := range T {
			if b.Completion[r*T+t] != 0 {
				n[r]++
			}
		}
	}
	w := make([]float32, R*T)
	for r := range R {
		shared := min(n[r%b.B], n[r%b.B+b.B])
		k := 0
		for t := range T {
			if b.Completion[r*T+t] == 0 {
				continue
			}
			k++
			if k <= shared {
				w[r*T+t] = 1
			} else {
				w[r*T+t] = float32(alpha)
			}
		}
	}
	return w
}

// Data serves pairs to the trainer.
type Data struct {
	Pairs []Pair
	Pad   int
}

func (d *Data) Len() int { return len(d.Pairs) }

func (d *Data) Batch(idx []int) (*Batch, error) {
	ps := make([]Pair, len(idx))
	for i, j := range idx {
		ps[i] = d.Pairs[j]
	}
	return Collate(ps, d.Pad), nil
}

// Inputs returns the model input for a batch on dev.
func (b *Batch) Inputs(dev tensor.Device) *model.Input {
	return &model.Input{IDs: tensor.Int64sOn(b.IDs, dev, int64(2*b.B), int64(b.T))}
}

// Logps is the per-row summary of a causal LM's logits over the completion
// tokens of a batch.
type Logps struct {
	Sum   *tensor.Tensor // (2B) sum of log p(token) over completion tokens
	Count *tensor.Tensor // (2B) number of completion tokens
	// MeanLogits (2B) is the mean logit over completion positions and the
	// vocabulary (TRL's logits/chosen, logits/rejected).
	MeanLogits *tensor.Tensor
	// RowSum and RowCount (2B) are the sum of log p(token) over every real
	// token after the first, prompt included, and their number (ORPO's NLL
	// term). Gradients flow through RowSum.
	RowSum, RowCount *tensor.Tensor
	// PerToken (2B, T) is log p(token t+1) at each completion position t,
	// 0 elsewhere (Sum is its row sum). Gradients flow through it.
	PerToken *tensor.Tensor
	// EntropySum (2B) is the summed entropy of the predicted distribution
	// over completion positions, Correct (2B) the number of completion
	// tokens that are the argmax (TRL's entropy and mean_token_accuracy).
	EntropySum, Correct *tensor.Tensor
}

// CompletionLogps computes Logps from logits (2B, T, V); completion tokens
// are those after the prompt. Gradients flow through Sum.
func CompletionLogps(logits *tensor.Tensor, b *Batch) Logps {
	return completionLogps(model.LogitsTokenLogps(logits, b.nextTokens(logits.Device())), b)
}

// HeadCompletionLogps is CompletionLogps from m's hidden states (2B, T, H)
// through m's chunked LM head (Model.TokenLogps): the (2B, T, V) logits
// never exist at once, in forward or backward.
func HeadCompletionLogps(m *model.Model, hidden *tensor.Tensor, b *Batch) Logps {
	return completionLogps(m.TokenLogps(hidden, b.nextTokens(hidden.Device()), 1), b)
}

// nextTokens (2B, T) is token t+1 at position t (the last position's
// target is unused: mask 0).
func (b *Batch) nextTokens(dev tensor.Device) *tensor.Tensor {
	R, T := int64(2*b.B), int64(b.T)
	ids := tensor.Int64sOn(b.IDs, dev, R, T)
	return tensor.Cat([]*tensor.Tensor{ids.Narrow(1, 1, T-1), ids.Narrow(1, 0, 1)}, 1)
}

func completionLogps(tok model.TokenLogps, b *Batch) Logps {
	logp := tok.Logp // (R, T)
	dev := logp.Device()
	R, T := int64(2*b.B), int64(b.T)
	mask := tensor.Float32sOn(b.Completion, logp.DType(), dev, R, T)
	var out Logps
	out.PerToken = logp.Mul(mask)
	out.Sum = out.PerToken.SumDim(1, false)
	out.Count = mask.SumDim(1, false)
	real := make([]float32, R*T) // position t predicts a real token t+1
	for r := range R {
		for t := range b.Last[r] {
			real[r*T+t] = 1
		}
	}
	rmask := tensor.Float32sOn(real, logp.DType(), dev, R, T)
	out.RowSum = logp.Mul(rmask).SumDim(1, false)
	out.RowCount = rmask.SumDim(1, false)
	tensor.NoGrad(func() {
		out.MeanLogits = tok.LogitSum.Mul(mask).SumDim(1, false).Div(out.Count.ClampMin(1)).DivScalar(float64(tok.Vocab))
		out.EntropySum = tok.Entropy.Mul(mask).SumDim(1, false)
		out.Correct = tok.Argmax.Eq(b.nextTokens(dev)).ToDType(mask.DType()).Mul(mask).SumDim(1, false)
	})
	return out
}
