// Package rollout generates groups of completions for online RL trainers
// (GRPO, RLOO): prompts read from a dataset, several sampled completions
// per prompt, rewards from built-in functions and reward models, the
// completion-length metrics TRL logs, and per-token log-probs of a batch.
package rollout

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/rewardfn"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Prompt is a tokenised prompt with its dataset row (for column rewards).
type Prompt struct {
	IDs  []int
	Text string
	Row  map[string]any
	// Messages is a conversational prompt's messages (nil for a text
	// prompt), for reward models with their own chat template.
	Messages []datasets.Message
}

// Completion is one sampled completion of a prompt.
type Completion struct {
	Prompt *Prompt
	// IDs are the generated tokens up to and including the first stop
	// token, as TRL's completion_ids_list (the eos is part of the
	// completion and is trained).
	IDs []int
	// Terminated: the completion ended with a stop token (else it was cut
	// at max_completion_length: TRL's is_truncated is !Terminated).
	Terminated bool
	// Text is the completion decoded without special tokens.
	Text string
}

// Seed derives a seed from the run's seed and the indices of a generation
// (and of a chunk in it), so that a resumed run samples what an
// uninterrupted one does.
func Seed(seed int64, parts ...int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d", seed)
	for _, p := range parts {
		fmt.Fprintf(h, "/%d", p)
	}
	return h.Sum64()
}

// PromptsFor returns the n unique prompts of generation g: consecutive
// slices of per-epoch seeded permutations of ps (TRL's RepeatSampler
// shuffles the dataset with the seed and walks it in order), or of ps in
// order when shuffle is false.
func PromptsFor(ps []Prompt, seed int64, g, n int, shuffle bool) []*Prompt {
	out := make([]*Prompt, n)
	var perm []int
	permEpoch := -1
	N := len(ps)
	for i := range out {
		k := g*n + i
		e := k / N
		if !shuffle {
			out[i] = &ps[k%N]
			continue
		}
		if e != permEpoch {
			perm = rand.New(rand.NewPCG(uint64(seed), uint64(e)+0x2545f491)).Perm(N)
			permEpoch = e
		}
		out[i] = &ps[perm[k%N]]
	}
	return out
}

// Sampler holds what sampling a group of completions needs.
type Sampler struct {
	Policy  *model.Model
	Tok     *tokenizer.Tokenizer
	StopIDs []int
	Pad     int
	Gen     generate.Config // MaxNewTokens, Temperature, TopK, TopP, RepetitionPenalty
	Chunk   int             // prompts per generate call (0: all)
}

// Sample generates numGenerations completions for each prompt, the
// copies of a prompt next to each other (TRL's mini_repeat_count), with
// the sampler seeded by seed.
func (s *Sampler) Sample(prompts []*Prompt, numGenerations int, seed uint64) (out []*Completion, genTokens int, err error) {
	return s.SampleFrom(prompts, numGenerations, seed, 0)
}

// SampleFrom is Sample for the rows of a generation batch that start at
// row first: each row draws from a sampler of its own, seeded by seed and
// its row index in the whole batch (RowSeed), so that a row's completion
// does not depend on the chunk, the rank or the other rows it is
// generated with (a data-parallel world of N ranks samples what one
// process does).
func (s *Sampler) SampleFrom(prompts []*Prompt, numGenerations int, seed uint64, first int) (out []*Completion, genTokens int, err error) {
	var rows []*Prompt
	for _, p := range prompts {
		for range numGenerations {
			rows = append(rows, p)
		}
	}
	chunk := s.Chunk
	if chunk <= 0 {
		chunk = len(rows)
	}
	for lo := 0; lo < len(rows); lo += chunk {
		ps := rows[lo:min(lo+chunk, len(rows))]
		ids := make([][]int, len(ps))
		seeds := make([]uint64, len(ps))
		for i, p := range ps {
			ids[i] = p.IDs
			seeds[i] = RowSeed(seed, first+lo+i)
		}
		cfg := s.Gen
		cfg.DoSample, cfg.EOSTokenIDs, cfg.PadTokenID = true, s.StopIDs, s.Pad
		cfg.Seed, cfg.RowSeeds = seed, seeds
		res, err := generate.Generate(s.Policy, ids, cfg)
		if err != nil {
			return nil, 0, err
		}
		for i, g := range res {
			c := &Completion{Prompt: ps[i], IDs: g.Tokens, Terminated: g.Finished}
			if c.Text, err = s.Tok.Decode(g.Tokens, true); err != nil {
				return nil, 0, fmt.Errorf("rollout: decode a completion: %w", err)
			}
			genTokens += len(g.Tokens)
			out = append(out, c)
		}
	}
	return out, genTokens, nil
}

// RowSeed is the sampler seed of row i of a generation batch seeded by
// seed (splitmix64's finaliser of the pair).
func RowSeed(seed uint64, i int) uint64 {
	z := seed + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// CompletionStats are TRL's completions/* metrics of a generation batch
// (grpo_trainer.py, _generate_and_score_completions): lengths in tokens
// (the eos included), the fraction cut at max_completion_length
// (clipped_ratio) and the lengths of the terminated ones (0 when none).
func CompletionStats(cs []*Completion) map[string]float64 {
	m := map[string]float64{}
	if len(cs) == 0 {
		return m
	}
	var sum, tsum float64
	mn, mx := math.Inf(1), math.Inf(-1)
	tmn, tmx := math.Inf(1), math.Inf(-1)
	var nt, clipped int
	for _, c := range cs {
		l := float64(len(c.IDs))
		sum += l
		mn, mx = math.Min(mn, l), math.Max(mx, l)
		if !c.Terminated {
			clipped++
			continue
		}
		nt++
		tsum += l
		tmn, tmx = math.Min(tmn, l), math.Max(tmx, l)
	}
	if nt == 0 {
		tsum, tmn, tmx, nt = 0, 0, 0, 1
	}
	n := float64(len(cs))
	m["completions/mean_length"] = sum / n
	m["completions/min_length"] = mn
	m["completions/max_length"] = mx
	m["completions/clipped_ratio"] = float64(clipped) / n
	m["completions/mean_terminated_length"] = tsum / float64(nt)
	m["completions/min_terminated_length"] = tmn
	m["completions/max_terminated_length"] = tmx
	return m
}

// Reward is one of a run's reward functions: a built-in (rewardfn), a
// sequence-classification reward model, or an external program.
type Reward struct {
	Name  string // the metric name: rewards/{Name}/mean
	Fn    rewardfn.ColumnFunc
	Model *model.Model
	// Tok is a reward model's own tokenizer when it is not the policy's
	// (TRL's reward_processing_classes): Score then decodes, re-encodes
	// and scores text (see textFor). nil: the model reads the policy's ids.
	Tok *tokenizer.Tokenizer
	Cmd []string // cmd:PROGRAM ARGS...: see CmdPrefix
	// Timeout bounds a program's answer to one completion (0:
	// DefaultRewardTimeout).
	Timeout time.Duration
	proc    *cmdProc // the running program (cmdreward.go)
}

// CmdPrefix marks an external reward program in reward_funcs:
// "cmd:PROGRAM ARG..." (split on spaces, no shell). rl starts the program
// once and keeps it running: for each completion it writes one JSON object
// on a line to its standard input, {"prompt": ..., "completion": ..., and
// the prompt's other dataset columns}, and reads one line from its
// standard output, in order: a number, null for no reward (TRL's None), or
// {"reward": number|null}. Its stderr is the program's own (its tail goes
// into errors). A program that exits, takes longer than reward_timeout for
// an answer, or answers anything else stops the run with an error naming
// it (checkpoints already written stay). docs/reward-programs.md has
// examples in Python and Go.
const CmdPrefix = "cmd:"

// LoadRewards reads the reward_funcs specs: builtin:NAME, cmd:PROGRAM
// ARGS (CmdPrefix) or a reward model directory (an rl reward output,
// num_labels 1). A reward model saved with a tokenizer other than the
// policy's (tok, saved in policyDir) scores decoded text re-encoded with
// its own (Reward.Tok); one without a tokenizer must read the policy's
// ids. flag names the option in errors.
func LoadRewards(specs []string, flag string, policy *model.Model, tok *tokenizer.Tokenizer, policyDir string, opts model.LoadOptions) (rs []*Reward, err error) {
	defer func() {
		if err != nil {
			FreeRewards(rs)
			rs = nil
		}
	}()
	if len(specs) == 0 {
		return nil, fmt.Errorf("%s must name at least one reward (builtin:NAME or a reward model directory)", flag)
	}
	seen := map[string]bool{}
	for _, spec := range specs {
		if c, ok := strings.CutPrefix(spec, CmdPrefix); ok {
			args := strings.Fields(c)
			if len(args) == 0 {
				return rs, fmt.Errorf("%s: %q names no program (want cmd:PROGRAM ARG...)", flag, spec)
			}
			if _, err := exec.LookPath(args[0]); err != nil {
				return rs, fmt.Errorf("%s %s: %w", flag, spec, err)
			}
			r := &Reward{Name: filepath.Base(args[0]), Cmd: args}
			rs = append(rs, r)
			if seen[r.Name] {
				return rs, fmt.Errorf("%s: %s named twice", flag, r.Name)
			}
			seen[r.Name] = true
			continue
		}
		fn, builtin, err := rewardfn.ParseColumns(spec)
		if err != nil {
			return rs, fmt.Errorf("%s: %w", flag, err)
		}
		r := &Reward{Name: strings.TrimPrefix(spec, rewardfn.Prefix), Fn: fn}
		if !builtin {
			// TRL names a reward model by its config's _name_or_path (its
			// last component here).
			r.Name = filepath.Base(filepath.Clean(spec))
			rc, err := model.ReadConfig(filepath.Join(spec, "config.json"))
			if err != nil {
				return rs, fmt.Errorf("%s %s: %w (want builtin:NAME, have: %s; or a reward model directory)", flag, spec, err, strings.Join(rewardfn.Names(), ", "))
			}
			if rc.NumLabels != 1 {
				return rs, fmt.Errorf("%s %s is not a reward model (a sequence-classification checkpoint with num_labels 1, as rl reward writes); use builtin:NAME for a programmatic reward", flag, spec)
			}
			ropts := opts
			ropts.Head = model.ScoreHead
			if r.Model, err = model.Load(spec, ropts); err != nil {
				return rs, fmt.Errorf("%s %s: %w", flag, spec, err)
			}
			rs = append(rs, r)
			if r.Tok, err = rewardTokenizer(spec, tok); err != nil {
				return rs, fmt.Errorf("%s %s: %w", flag, spec, err)
			}
			if r.Tok == nil {
				if err := checkpoint.CheckSaved(spec, tok, filepath.Join(policyDir, "tokenizer.json")); err != nil {
					return rs, fmt.Errorf("%s %s: the policy and the reward model must share a tokenizer: %w", flag, spec, err)
				}
				if r.Model.Config.VocabSize != policy.Config.VocabSize {
					return rs, fmt.Errorf("%s %s: the reward model's vocab_size %d differs from the policy's %d, and the directory has no tokenizer of its own to re-encode the completions with", flag, spec, r.Model.Config.VocabSize, policy.Config.VocabSize)
				}
			} else if n := r.Tok.VocabSize(); n > r.Model.Config.VocabSize {
				return rs, fmt.Errorf("%s %s: its tokenizer has %d tokens, more than the model's vocab_size %d", flag, spec, n, r.Model.Config.VocabSize)
			}
			if r.Tok == nil && r.Model.Config.Encoder() {
				// an encoder reads the tokenizer's pair template with its
				// padding mask and type ids, never the policy's left-padded
				// ids: re-encode the text with the (shared) tokenizer
				r.Tok = tok
			}
			r.Model.NoDropout = true
			r.Model.SetRequiresGrad(false)
		} else {
			rs = append(rs, r)
		}
		if seen[r.Name] {
			return rs, fmt.Errorf("%s: %s named twice", flag, spec)
		}
		seen[r.Name] = true
	}
	return rs, nil
}

// FreeRewards frees the reward models.
func FreeRewards(rs []*Reward) {
	for _, r := range rs {
		if r.Model != nil {
			r.Model.Free()
		}
		r.stop()
	}
}

// Score returns each completion's reward; NaN where the function had none
// (TRL's None).
func (r *Reward) Score(cs []*Completion, pad int) (out []float64, err error) {
	defer tensor.Recover(&err, "reward "+r.Name)
	out = make([]float64, len(cs))
	if r.Cmd != nil {
		return r.runCmd(cs)
	}
	if r.Fn != nil {
		for i, c := range cs {
			v, ok := r.Fn(c.Prompt.Text, c.Text, c.Prompt.Row)
			if !ok {
				v = math.NaN()
			}
			out[i] = v
		}
		return out, nil
	}
	if r.Tok != nil {
		return r.scoreText(cs)
	}
	// A reward model reads prompt + completion at its last real token
	// (transformers' score head rule, model.Config.ScoreIndex).
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			b := NewBatch(cs, pad, r.Model.Device)
			sc := r.Model.Scores(r.Model.Hidden(b.Input(false))).Squeeze(2) // (B, L)
			last := make([]int64, len(cs))
			for i := range cs {
				last[i] = int64(b.ScoreIndex(r.Model.Config, i))
			}
			v := sc.Gather(1, tensor.FromInt64s(last, int64(len(cs)), 1).To(tensor.Int64, r.Model.Device)).Float64s()
			copy(out, v)
		})
	})
	return out, nil
}

// rewardTokenizer loads the tokenizer saved with the reward model in dir
// when it is not the policy's tok (nil when it is, or when dir has none).
func rewardTokenizer(dir string, tok *tokenizer.Tokenizer) (*tokenizer.Tokenizer, error) {
	if !tokenizer.HasFiles(dir) {
		return nil, nil
	}
	rt, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("its tokenizer: %w", err)
	}
	if checkpoint.FingerprintOf(rt) == checkpoint.FingerprintOf(tok) {
		return nil, nil
	}
	return rt, nil
}

// textFor is what a reward model with its own tokenizer reads, as TRL's
// _calculate_rewards builds it: for a conversational prompt, the prompt's
// messages and the completion as the assistant's, rendered with the
// reward tokenizer's chat template (when it has one); otherwise the
// prompt's text followed by the completion's.
func textFor(rt *tokenizer.Tokenizer, c *Completion) (string, error) {
	if c.Prompt.Messages != nil && rt.ChatTemplate() != "" {
		msgs := append(slices.Clone(c.Prompt.Messages), datasets.Message{Role: "assistant", Content: c.Text})
		return datasets.ApplyChatTemplate(rt.ChatTemplate(), msgs, false, rt.TemplateSpecials())
	}
	return c.Prompt.Text + c.Text, nil
}

// scoreText scores cs with a reward model that has its own tokenizer:
// each text (textFor) encoded without added special tokens and
// right-padded, as TRL's reward_processing_class(text=texts,
// padding_side="right", add_special_tokens=False), read at its last real
// token.
func (r *Reward) scoreText(cs []*Completion) (out []float64, err error) {
	if r.Model.Config.Encoder() {
		return r.scoreEncoder(cs)
	}
	rows := make([][]int, len(cs))
	L := 1
	for i, c := range cs {
		text, err := textFor(r.Tok, c)
		if err != nil {
			return nil, fmt.Errorf("reward %s: chat template: %w", r.Name, err)
		}
		if rows[i], err = r.Tok.Encode(text, false); err != nil {
			return nil, fmt.Errorf("reward %s: encode: %w", r.Name, err)
		}
		if len(rows[i]) == 0 {
			return nil, fmt.Errorf("reward %s: a prompt and completion encode to no tokens", r.Name)
		}
		L = max(L, len(rows[i]))
	}
	if max := r.Model.Config.MaxPositions; L > max {
		return nil, fmt.Errorf("reward %s: a prompt and completion are %d tokens in its tokenizer, more than its %d positions", r.Name, L, max)
	}
	pad := int64(max(r.Tok.PAD(), 0))
	B := len(cs)
	ids, mask := make([]int64, B*L), make([]int64, B*L)
	last := make([]int64, B)
	for i, row := range rows {
		for t := range L {
			ids[i*L+t] = pad
		}
		for t, id := range row {
			ids[i*L+t], mask[i*L+t] = int64(id), 1
		}
		last[i] = int64(r.Model.Config.ScoreIndex(len(row)-1, func(p int) int64 { return ids[i*L+p] }))
	}
	out = make([]float64, B)
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			dev := r.Model.Device
			in := &model.Input{IDs: tensor.FromInt64s(ids, int64(B), int64(L)).To(tensor.Int64, dev),
				AttentionMask: tensor.FromInt64s(mask, int64(B), int64(L)).To(tensor.Int64, dev)}
			sc := r.Model.Scores(r.Model.Hidden(in)).Squeeze(2) // (B, L)
			copy(out, sc.Gather(1, tensor.FromInt64s(last, int64(B), 1).To(tensor.Int64, dev)).Float64s())
		})
	})
	return out, nil
}

// encoderPrompt is the prompt text an encoder reward model reads: the
// prompt's text, or for a conversational prompt the content of its last
// message (an encoder tokenizer has no chat template).
func encoderPrompt(c *Completion) string {
	if n := len(c.Prompt.Messages); n > 0 {
		return c.Prompt.Messages[n-1].Content
	}
	return c.Prompt.Text
}

// scoreEncoder scores cs with an encoder reward model (BERT, DistilBERT,
// RoBERTa, DeBERTa-v2/v3) as rl score and rl reward read it, and as such models are
// called (tokenizer(question, answer)): the reward tokenizer's pair
// template [CLS] prompt [SEP] completion [SEP] (encoderPrompt; the
// completion alone with its specials when the prompt is empty) with its
// token type ids, right-padded with the padding mask, the family's head
// on the first token ([CLS]/<s>).
func (r *Reward) scoreEncoder(cs []*Completion) (out []float64, err error) {
	B := len(cs)
	rows, types := make([][]int, B), make([][]int, B)
	L := 1
	for i, c := range cs {
		p := encoderPrompt(c)
		if p == "" {
			rows[i], err = r.Tok.Encode(c.Text, true)
			types[i] = make([]int, len(rows[i]))
		} else {
			rows[i], types[i], err = r.Tok.EncodePair(p, c.Text, true)
		}
		if err != nil {
			return nil, fmt.Errorf("reward %s: encode: %w", r.Name, err)
		}
		L = max(L, len(rows[i]))
	}
	if max := r.Model.Config.MaxPositions; max > 0 && L > max {
		return nil, fmt.Errorf("reward %s: a prompt and completion are %d tokens in its tokenizer, more than its %d positions", r.Name, L, max)
	}
	pad := int64(max(r.Tok.PAD(), 0))
	if p := r.Model.Config.PadTokenID; p != nil {
		pad = int64(*p)
	}
	ids, mask, tt := make([]int64, B*L), make([]int64, B*L), make([]int64, B*L)
	read := make([]int64, B)
	for i, row := range rows {
		for t := range L {
			ids[i*L+t] = pad
		}
		for t, id := range row {
			ids[i*L+t], mask[i*L+t], tt[i*L+t] = int64(id), 1, int64(types[i][t])
		}
		read[i] = int64(i*L + r.Model.Config.ScoreIndex(len(row)-1, func(p int) int64 { return ids[i*L+p] }))
	}
	out = make([]float64, B)
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			dev := r.Model.Device
			in := &model.Input{IDs: tensor.FromInt64s(ids, int64(B), int64(L)).To(tensor.Int64, dev),
				AttentionMask: tensor.FromInt64s(mask, int64(B), int64(L)).To(tensor.Int64, dev),
				TokenTypeIDs:  tensor.FromInt64s(tt, int64(B), int64(L)).To(tensor.Int64, dev)}
			h := r.Model.Hidden(in) // (B, L, H)
			pooled := h.Reshape(int64(B*L), -1).IndexSelect(0, tensor.FromInt64s(read, int64(B)).To(tensor.Int64, dev))
			copy(out, r.Model.ScoresFor(in, pooled).Squeeze(1).Float64s())
		})
	})
	return out, nil
}

// Batch is a set of completions laid out for a forward pass: prompts
// left-padded to P tokens, completions right-padded to T.
type Batch struct {
	IDs, Mask []int64 // (B, P+T)
	Comp      []int64 // (B, T) completion tokens, pad after the end
	CompMask  []float32
	B, P, T   int
	pad       int
	dev       tensor.Device
}

// NewBatch lays out cs.
func NewBatch(cs []*Completion, pad int, dev tensor.Device) *Batch {
	b := &Batch{B: len(cs), pad: pad, dev: dev}
	for _, c := range cs {
		b.P = max(b.P, len(c.Prompt.IDs))
		b.T = max(b.T, len(c.IDs))
	}
	b.T = max(b.T, 1)
	L := b.P + b.T
	b.IDs = make([]int64, b.B*L)
	b.Mask = make([]int64, b.B*L)
	b.Comp = make([]int64, b.B*b.T)
	b.CompMask = make([]float32, b.B*b.T)
	for i, c := range cs {
		row, m := b.IDs[i*L:(i+1)*L], b.Mask[i*L:(i+1)*L]
		off := b.P - len(c.Prompt.IDs)
		for t := range row {
			row[t] = int64(pad)
		}
		for t, id := range c.Prompt.IDs {
			row[off+t], m[off+t] = int64(id), 1
		}
		for t := 0; t < b.T; t++ {
			b.Comp[i*b.T+t] = int64(pad)
		}
		for t, id := range c.IDs {
			row[b.P+t], m[b.P+t] = int64(id), 1
			b.Comp[i*b.T+t] = int64(id)
			b.CompMask[i*b.T+t] = 1
		}
	}
	return b
}

// Input is the model input of the batch; train applies dropout.
func (b *Batch) Input(train bool) *model.Input {
	L := int64(b.P + b.T)
	return &model.Input{
		IDs:           tensor.FromInt64s(b.IDs, int64(b.B), L).To(tensor.Int64, b.dev),
		AttentionMask: tensor.FromInt64s(b.Mask, int64(b.B), L).To(tensor.Int64, b.dev),
		Train:         train,
	}
}

// ScoreIndex is where a score head reads row i.
func (b *Batch) ScoreIndex(c *model.Config, i int) int {
	L := b.P + b.T
	last := L - 1
	for last > 0 && b.Mask[i*L+last] == 0 {
		last--
	}
	return c.ScoreIndex(last, func(p int) int64 { return b.IDs[i*L+p] })
}

// CompletionMask is the (B, T) mask of completion tokens in dtype dt.
func (b *Batch) CompletionMask(dt tensor.DType) *tensor.Tensor {
	return tensor.FromFloat32s(b.CompMask, int64(b.B), int64(b.T)).To(dt, b.dev)
}

// Logits returns the logits predicting each completion token, divided by
// temperature as TRL's _get_per_token_logps_and_entropies does: (B, T, V).
func (b *Batch) Logits(m *model.Model, temperature float64, train bool) *tensor.Tensor {
	h := m.Hidden(b.Input(train)).Narrow(1, int64(b.P-1), int64(b.T))
	return m.Logits(h).DivScalar(temperature)
}

// HeadLogps is TokenLogps(Logits(m, temperature, train)) and the entropy
// at each completion position, through m's chunked LM head
// (model.Model.TokenLogps): the (B, T, V) logits never exist at once.
func (b *Batch) HeadLogps(m *model.Model, temperature float64, train bool) model.TokenLogps {
	h := m.Hidden(b.Input(train)).Narrow(1, int64(b.P-1), int64(b.T))
	toks := tensor.FromInt64s(b.Comp, int64(b.B), int64(b.T)).To(tensor.Int64, b.dev)
	return m.TokenLogps(h, toks, temperature)
}

// TokenLogps is log_softmax(logits) at the completion tokens: (B, T).
func (b *Batch) TokenLogps(logits *tensor.Tensor) *tensor.Tensor {
	toks := tensor.FromInt64s(b.Comp, int64(b.B), int64(b.T)).To(tensor.Int64, b.dev)
	return logits.LogSoftmax(-1).Gather(2, toks.Unsqueeze(2)).Squeeze(2)
}

// Entropy is the entropy of softmax(logits) at each position: (B, T).
func Entropy(logits *tensor.Tensor) *tensor.Tensor {
	return logits.Logsumexp(-1, false).Sub(logits.Softmax(-1).Mul(logits).SumDim(-1, false))
}

// LogpsOf computes m's per-token log-probs of each completion without
// grad, in chunks of chunk rows; rows are unpadded (len(IDs) each).
func LogpsOf(m *model.Model, cs []*Completion, pad, chunk int, temperature float64) (out [][]float64, err error) {
	return logpsOf(m, false, cs, pad, chunk, temperature)
}

// RefLogpsOf is LogpsOf for the reference: m with its LoRA adapters
// disabled when noAdapters is set (the policy as its own reference).
func RefLogpsOf(m *model.Model, noAdapters bool, cs []*Completion, pad, chunk int, temperature float64) ([][]float64, error) {
	return logpsOf(m, noAdapters, cs, pad, chunk, temperature)
}

func logpsOf(m *model.Model, noAdapters bool, cs []*Completion, pad, chunk int, temperature float64) (out [][]float64, err error) {
	defer tensor.Recover(&err, "rollout log-probs")
	if chunk <= 0 {
		chunk = len(cs)
	}
	out = make([][]float64, len(cs))
	tensor.NoGrad(func() {
		for lo := 0; lo < len(cs); lo += chunk {
			part := cs[lo:min(lo+chunk, len(cs))]
			tensor.Tidy(func() {
				b := NewBatch(part, pad, m.Device)
				in := b.Input(false)
				in.DisableAdapters = noAdapters
				h := m.Hidden(in).Narrow(1, int64(b.P-1), int64(b.T))
				toks := tensor.FromInt64s(b.Comp, int64(b.B), int64(b.T)).To(tensor.Int64, b.dev)
				v := m.TokenLogps(h, toks, temperature).Logp.Float64s()
				for i, c := range part {
					out[lo+i] = slices.Clone(v[i*b.T : i*b.T+len(c.IDs)])
				}
			})
		}
	})
	return out, nil
}

// LoadPrompts reads the prompts of a dataset split: chat templates applied
// to conversational prompts, encoded, cut to maxLen tokens from the left
// (0: no limit).
func LoadPrompts(d *datasets.Dataset, tok *tokenizer.Tokenizer, maxLen int, log zerolog.Logger) ([]Prompt, error) {
	nd, err := d.Normalize()
	if err != nil {
		return nil, err
	}
	datasets.WarnSkipped(log, d, true)
	ps, err := nd.Prompts()
	if err != nil {
		return nil, err
	}
	datasets.WarnSkipped(log, nd, false)
	var out []Prompt
	for _, p := range ps {
		text := p.Text
		if p.Messages != nil {
			if text, err = datasets.ApplyChatTemplate(tok.ChatTemplate(), p.Messages, true, tok.TemplateSpecials()); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Src, err)
			}
		}
		// a rendered template writes its own special tokens: add none
		ids, err := tok.Encode(text, p.Messages == nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Src, err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%s: the prompt encodes to no tokens", p.Src)
		}
		if maxLen > 0 && len(ids) > maxLen {
			ids = ids[len(ids)-maxLen:]
		}
		out = append(out, Prompt{IDs: ids, Text: text, Row: p.Record, Messages: p.Messages})
	}
	return out, nil
}
