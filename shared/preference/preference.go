// Package preference tokenises preference pairs and batches them for the
// preference trainers (reward, DPO, ORPO): chosen and rejected go through a
// model in one concatenated batch, chosen rows first.
package preference

import (
	"errors"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Pair is a tokenised preference pair.
type Pair struct {
	Prompt, Chosen, Rejected []int32
	Margin                   *float64
	Src                      datasets.Source
}

// Truncation says which end of an over-long sequence survives.
const (
	KeepEnd   = "keep_end"   // drop the start of the prompt (TRL ORPO's default)
	KeepStart = "keep_start" // drop the end of the completions (TRL DPO's default)
	Drop      = "drop"       // drop the pair (TRL RewardTrainer)
)

// Encoder tokenises pairs.
type Encoder struct {
	Tok            *tokenizer.Tokenizer
	MaxLength      int    // prompt + longer completion; 0: no limit
	TruncationMode string // KeepEnd, KeepStart or Drop
	EOS            int    // appended to completions; -1: none
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

func (e *Encoder) special() map[string]string {
	sp := map[string]string{}
	if s, ok := e.Tok.IDToToken(e.Tok.BOS()); ok {
		sp["bos_token"] = s
	}
	if s, ok := e.Tok.IDToToken(e.Tok.EOS()); ok {
		sp["eos_token"] = s
	}
	return sp
}

// ErrTooLong marks a pair dropped for length: any pair over max_length with
// TruncationMode Drop, or a prompt that leaves no room with KeepStart.
var ErrTooLong = errors.New("preference pair longer than max_length")

// Encode tokenises one pair: the prompt with the tokenizer's special tokens
// (e.g. BOS), each completion without, plus eos. Conversational pairs are
// rendered with the chat template: the prompt with the generation prompt,
// each completion as the rest of the full conversation.
func (e *Encoder) Encode(p datasets.Preference) (Pair, error) {
	prompt, chosen, rejected := p.Prompt, p.Chosen, p.Rejected
	conv := p.ChosenMessages != nil
	if conv {
		tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
		if err != nil {
			return Pair{}, err
		}
		sp := e.special()
		if prompt, err = tmpl.Apply(p.PromptMessages, true, sp); err != nil {
			return Pair{}, err
		}
		rest := func(msgs []datasets.Message) (string, error) {
			full, err := tmpl.Apply(append(slices.Clone(p.PromptMessages), msgs...), false, sp)
			if err != nil {
				return "", err
			}
			if len(full) < len(prompt) || full[:len(prompt)] != prompt {
				return "", errors.New("chat template: the prompt's rendering is not a prefix of the conversation's")
			}
			return full[len(prompt):], nil
		}
		if chosen, err = rest(p.ChosenMessages); err != nil {
			return Pair{}, err
		}
		if rejected, err = rest(p.RejectedMessages); err != nil {
			return Pair{}, err
		}
	}
	var out Pair
	var err error
	if out.Prompt, err = e.ids(prompt, true); err != nil {
		return Pair{}, err
	}
	if out.Chosen, err = e.ids(chosen, false); err != nil {
		return Pair{}, err
	}
	if out.Rejected, err = e.ids(rejected, false); err != nil {
		return Pair{}, err
	}
	if e.EOS >= 0 && !conv {
		out.Chosen = append(out.Chosen, int32(e.EOS))
		out.Rejected = append(out.Rejected, int32(e.EOS))
	}
	if len(out.Chosen) == 0 || len(out.Rejected) == 0 {
		return Pair{}, errors.New("a completion encodes to no tokens")
	}
	out.Margin, out.Src = p.Margin, p.Src
	return e.truncate(out)
}

func (e *Encoder) truncate(p Pair) (Pair, error) {
	if e.MaxLength <= 0 {
		return p, nil
	}
	longest := max(len(p.Chosen), len(p.Rejected))
	if len(p.Prompt)+longest <= e.MaxLength {
		return p, nil
	}
	switch e.TruncationMode {
	case Drop:
		return Pair{}, ErrTooLong
	case KeepStart:
		room := e.MaxLength - len(p.Prompt)
		if room < 1 {
			return Pair{}, fmt.Errorf("%w: prompt of %d tokens leaves no room for a completion within max_length %d (truncation_mode keep_start)", ErrTooLong, len(p.Prompt), e.MaxLength)
		}
		p.Chosen = p.Chosen[:min(len(p.Chosen), room)]
		p.Rejected = p.Rejected[:min(len(p.Rejected), room)]
	default: // KeepEnd: cut the prompt from the left, then completions if still too long
		keep := e.MaxLength - longest
		if keep < 1 {
			keep = min(len(p.Prompt), 1)
		}
		p.Prompt = p.Prompt[len(p.Prompt)-keep:]
		room := e.MaxLength - len(p.Prompt)
		p.Chosen = p.Chosen[:min(len(p.Chosen), room)]
		p.Rejected = p.Rejected[:min(len(p.Rejected), room)]
	}
	return p, nil
}

// EncodeAll tokenises pairs, counting (and logging) those dropped for length.
func (e *Encoder) EncodeAll(prefs []datasets.Preference, log zerolog.Logger, what string) ([]Pair, int, error) {
	prog := metrics.NewProgress(log, "tokenizing "+what, len(prefs))
	defer prog.Done()
	var out []Pair
	dropped := 0
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
	return out, dropped, nil
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
	// PromptLen[i] is pair i's prompt length.
	PromptLen []int
	tokens    int
}

// NumTokens counts real tokens in the batch.
func (b *Batch) NumTokens() int { return b.tokens }

// Collate builds a batch from pairs, padding with pad.
func Collate(pairs []Pair, pad int) *Batch {
	B := len(pairs)
	T := 0
	for _, p := range pairs {
		T = max(T, len(p.Prompt)+max(len(p.Chosen), len(p.Rejected)))
	}
	b := &Batch{B: B, T: T, IDs: make([]int64, 2*B*T), Completion: make([]float32, 2*B*T), Last: make([]int64, 2*B), Margins: make([]float64, B), PromptLen: make([]int, B)}
	for i, p := range pairs {
		if p.Margin != nil {
			b.Margins[i] = *p.Margin
			b.HasMargin = true
		}
		b.PromptLen[i] = len(p.Prompt)
		for side, comp := range [][]int32{p.Chosen, p.Rejected} {
			r := i + side*B
			row := b.IDs[r*T : (r+1)*T]
			n := 0
			for _, id := range p.Prompt {
				row[n] = int64(id)
				n++
			}
			for _, id := range comp {
				row[n] = int64(id)
				n++
			}
			for t := n; t < T; t++ {
				row[t] = int64(pad)
			}
			for t := len(p.Prompt) - 1; t < n-1; t++ {
				if t >= 0 {
					b.Completion[r*T+t] = 1
				}
			}
			b.Last[r] = int64(n - 1)
			b.tokens += n
		}
	}
	return b
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
	return &model.Input{IDs: tensor.FromInt64s(b.IDs, int64(2*b.B), int64(b.T)).To(tensor.Int64, dev)}
}

// Logps is the per-row summary of a causal LM's logits over the completion
// tokens of a batch.
type Logps struct {
	Sum   *tensor.Tensor // (2B) sum of log p(token) over completion tokens
	Count *tensor.Tensor // (2B) number of completion tokens
	// MeanLogits (2B) is the mean logit over completion positions and the
	// vocabulary (TRL's logits/chosen, logits/rejected).
	MeanLogits *tensor.Tensor
}

// CompletionLogps computes Logps from logits (2B, T, V); completion tokens
// are those after the prompt. Gradients flow through Sum.
func CompletionLogps(logits *tensor.Tensor, b *Batch) Logps {
	if logits.DType() != tensor.Float32 && logits.DType() != tensor.Float64 {
		logits = logits.ToDType(tensor.Float32) // sum log-probs in float32, not bf16
	}
	dev := logits.Device()
	R, T := int64(2*b.B), int64(b.T)
	ids := tensor.FromInt64s(b.IDs, R, T).To(tensor.Int64, dev)
	mask := tensor.FromFloat32s(b.Completion, R, T).To(logits.DType(), dev)
	// targets: token t+1 at position t (the last position's target is unused: mask 0)
	next := tensor.Cat([]*tensor.Tensor{ids.Narrow(1, 1, T-1), ids.Narrow(1, 0, 1)}, 1) // (R, T)
	logp := logits.LogSoftmax(-1).Gather(2, next.Unsqueeze(2)).Squeeze(2)               // (R, T)
	var out Logps
	out.Sum = logp.Mul(mask).SumDim(1, false)
	out.Count = mask.SumDim(1, false)
	tensor.NoGrad(func() {
		V := float64(logits.Size(-1))
		out.MeanLogits = logits.SumDim(2, false).Mul(mask).SumDim(1, false).Div(out.Count.ClampMin(1)).DivScalar(V)
	})
	return out
}
