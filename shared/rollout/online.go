package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Generation is one generation batch of the world: every rank holds all
// of it (each sampled and scored its share, then the shares were
// gathered, as TRL gathers rewards_per_func before computing advantages).
type Generation struct {
	Index int
	Cs    []*Completion
	// PerFunc is each completion's reward per reward function (NaN: none).
	PerFunc [][]float64
	// Old and Ref are the per-token log-probs of each completion under the
	// policy and the reference at generation time (nil unless asked for).
	Old, Ref [][]float64
}

// MicroBatch is per_device_train_batch_size samples of a generation.
type MicroBatch[S any] struct {
	SS     []S
	Tokens int
}

// NumTokens implements train.Batch.
func (b *MicroBatch[S]) NumTokens() int { return b.Tokens }

// Online is the generation loop GRPO and RLOO share (TRL's
// _prepare_inputs and _generate_and_score_completions): at each
// generation boundary it samples GenBatch completions (NumGenerations
// per prompt), scores them with every reward function, computes the
// generation-time log-probs asked for, lets Score turn the generation
// into samples and metrics, shuffles it and serves it in
// Sched.StepsPerGeneration micro-batches.
//
// Data parallel (a world of W ranks, Dist): GenBatch is the world's
// generation batch. Rank r samples, scores and computes the log-probs of
// its contiguous share of the generation's prompts (each prompt's group
// stays on one rank; every row's sampler is keyed by its row in the whole
// batch, RowSeed, so the completions are those of one process); the
// shares are then gathered, so Score computes advantages and metrics over
// the whole batch, identically on every rank. Micro-batch k of the world
// is one process's micro-batch k: rank r trains on its every W-th sample
// (DistributedSampler's cut), and the trainer averages the gradients.
type Online[S any] struct {
	Name           string // the trainer, for errors
	Seed           int64
	NumGenerations int
	Shuffle        bool // shuffle_dataset
	Temperature    float64
	Chunk          int // rows per no-grad log-prob pass (generation_chunk)
	Prompts        []Prompt
	Policy, Ref    *model.Model
	RefIsPolicy    bool // the reference is Policy with its adapters disabled
	Rewards        []*Reward
	Sampler        *Sampler
	Pad            int
	GenBatch       int // completions per generation, the world's
	Sched          Schedule[S]
	// WantOld and WantRef ask for Generation.Old and Ref.
	WantOld, WantRef bool
	Dist             *dist.Group // nil: one process
	// Score turns a generation into its samples (in the generation's
	// order) and its metrics (TRL's names).
	Score func(*Generation) ([]S, map[string]float64, error)
	// Completion is a sample's completion.
	Completion func(S) *Completion
	// Logged is a sample's log_completions row.
	Logged         func(step int, s S) Logged
	LogCompletions bool
	OutDir         string
	Log            zerolog.Logger

	window    Window  // per-generation metrics of the logging window
	numTokens float64 // prompt + completion tokens generated (TRL's num_input_tokens_seen)
	gens      int     // generations so far
	last      []S     // the last generation (log_completions)
}

// Generations is the number of generations made so far.
func (o *Online[S]) Generations() int { return o.gens }

// BeginStep implements train.StepStarter: it queues the micro-batches of
// optimizer step step, generating where a generation is due.
func (o *Online[S]) BeginStep(step int) error {
	if err := o.Sched.Begin(step, o.generate); err != nil {
		return fmt.Errorf("%s: %w", o.Name, err)
	}
	return nil
}

// ResumableAt implements train.SaveBoundary.
func (o *Online[S]) ResumableAt(step int) error { return o.Sched.ResumableAt(step) }

// Len implements train.Dataset.
func (o *Online[S]) Len() int { return o.GenBatch }

// Batch implements train.Dataset: the queued micro-batches in order (the
// trainer asks for gradient_accumulation_steps of them right after
// BeginStep), this rank's share of each.
func (o *Online[S]) Batch([]int) (*MicroBatch[S], error) {
	ss, err := o.Sched.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	if w := o.Dist.Size(); w > 1 {
		var own []S
		for i := o.Dist.RankOf(); i < len(ss); i += w {
			own = append(own, ss[i])
		}
		ss = own
	}
	b := &MicroBatch[S]{SS: ss}
	for _, s := range ss {
		c := o.Completion(s)
		b.Tokens += len(c.Prompt.IDs) + len(c.IDs)
	}
	return b, nil
}

// share is the first and last+1 of the n prompts of a generation that
// rank r of a world of w samples.
func share(n, r, w int) (lo, hi int) { return r * n / w, (r + 1) * n / w }

// generate makes generation g and returns its samples shuffled.
func (o *Online[S]) generate(g int) (out []S, err error) {
	defer tensor.Recover(&err, o.Name+" generation")
	G := o.NumGenerations
	n := o.GenBatch / G
	prompts := PromptsFor(o.Prompts, o.Seed, g, n, o.Shuffle)
	lo, hi := share(n, o.Dist.RankOf(), o.Dist.Size())
	gen := &Generation{Index: g}
	if gen.Cs, _, err = o.Sampler.SampleFrom(prompts[lo:hi], G, Seed(o.Seed, g), lo*G); err != nil {
		return nil, err
	}
	N := len(gen.Cs)
	gen.PerFunc = make([][]float64, N)
	for i := range gen.PerFunc {
		gen.PerFunc[i] = make([]float64, len(o.Rewards))
	}
	for k, r := range o.Rewards {
		if N == 0 {
			break // a world with fewer prompts than ranks: this rank samples none
		}
		v, err := r.Score(gen.Cs, o.Pad)
		if err != nil {
			return nil, err
		}
		for i := range v {
			gen.PerFunc[i][k] = v[i]
		}
	}
	if o.WantOld && N > 0 {
		if gen.Old, err = LogpsOf(o.Policy, gen.Cs, o.Pad, o.Chunk, o.Temperature); err != nil {
			return nil, err
		}
	}
	if o.WantRef && N > 0 {
		if gen.Ref, err = RefLogpsOf(o.Ref, o.RefIsPolicy, gen.Cs, o.Pad, o.Chunk, o.Temperature); err != nil {
			return nil, err
		}
	}
	if o.Dist.Size() > 1 {
		if gen, err = o.gather(gen, prompts); err != nil {
			return nil, err
		}
	}
	ss, st, err := o.Score(gen)
	if err != nil {
		return nil, err
	}
	for _, c := range gen.Cs {
		o.numTokens += float64(len(c.Prompt.IDs) + len(c.IDs))
	}
	o.window.Add(st)
	o.gens = g + 1
	o.last = ss
	// TRL shuffles the generation batch (shuffle_sequence_dict) before
	// splitting it into steps_per_generation micro-batches.
	perm := rand.New(rand.NewPCG(Seed(o.Seed, g, -1), 0x51a3)).Perm(len(ss))
	out = make([]S, len(ss))
	for i, j := range perm {
		out[i] = ss[j]
	}
	return out, nil
}

// gather assembles the world's generation from every rank's share: one
// all-gather of fixed-width rows (prompt index, terminated, length,
// rewards, token ids and log-probs padded to max_completion_length).
func (o *Online[S]) gather(own *Generation, prompts []*Prompt) (*Generation, error) {
	w, rank := o.Dist.Size(), o.Dist.RankOf()
	G, n := o.NumGenerations, len(prompts)
	T := o.Sampler.Gen.MaxNewTokens
	K := len(o.Rewards)
	arrays := 0
	if o.WantOld {
		arrays++
	}
	if o.WantRef {
		arrays++
	}
	width := 3 + K + T*(1+arrays)
	maxRows := (n + w - 1) / w * G
	buf := make([]float64, maxRows*width)
	for i := range maxRows {
		buf[i*width+2] = -1 // no row
	}
	lo, _ := share(n, rank, w)
	for i, c := range own.Cs {
		if len(c.IDs) > T {
			return nil, fmt.Errorf("rollout: a completion of %d tokens is longer than max_completion_length %d", len(c.IDs), T)
		}
		row := buf[i*width : (i+1)*width]
		row[0], row[2] = float64(lo+i/G), float64(len(c.IDs))
		if c.Terminated {
			row[1] = 1
		}
		copy(row[3:], own.PerFunc[i])
		off := 3 + K
		for t, id := range c.IDs {
			row[off+t] = float64(id)
		}
		off += T
		for _, a := range [][][]float64{own.Old, own.Ref} {
			if a != nil {
				copy(row[off:off+T], a[i])
				off += T
			}
		}
	}
	all, err := o.Dist.AllGather(buf)
	if err != nil {
		return nil, fmt.Errorf("gather the generation: %w", err)
	}
	gen := &Generation{Index: own.Index}
	for r, part := range all {
		if r == rank { // this rank's own completions, as sampled
			gen.Cs = append(gen.Cs, own.Cs...)
			gen.PerFunc = append(gen.PerFunc, own.PerFunc...)
			gen.Old = append(gen.Old, own.Old...)
			gen.Ref = append(gen.Ref, own.Ref...)
			continue
		}
		for i := range maxRows {
			row := part[i*width : (i+1)*width]
			L := int(row[2])
			if L < 0 {
				continue
			}
			p := int(row[0])
			if p < 0 || p >= n || L > T {
				return nil, fmt.Errorf("%s: rank %d sent a malformed generation row (prompt %d of %d, %d tokens)", o.Name, r, p, n, L)
			}
			c := &Completion{Prompt: prompts[p], Terminated: row[1] == 1, IDs: make([]int, L)}
			off := 3 + K
			for t := range c.IDs {
				c.IDs[t] = int(row[off+t])
			}
			if c.Text, err = o.Sampler.Tok.Decode(c.IDs, true); err != nil {
				return nil, fmt.Errorf("rollout: decode a completion: %w", err)
			}
			gen.Cs = append(gen.Cs, c)
			gen.PerFunc = append(gen.PerFunc, append([]float64(nil), row[3:3+K]...))
			off += T
			if o.WantOld {
				gen.Old = append(gen.Old, append([]float64(nil), row[off:off+L]...))
				off += T
			}
			if o.WantRef {
				gen.Ref = append(gen.Ref, append([]float64(nil), row[off:off+L]...))
			}
		}
	}
	if len(gen.Cs) != n*G {
		return nil, fmt.Errorf("%s: gathered %d completions of a generation of %d", o.Name, len(gen.Cs), n*G)
	}
	if !o.WantOld {
		gen.Old = nil
	}
	if !o.WantRef {
		gen.Ref = nil
	}
	return gen, nil
}

// StatOp is how a Stat is reduced across ranks.
type StatOp int

const (
	// StatMean is Sum/N with both summed over the ranks (TRL's
	// accelerator.reduce of [sum, count]); N 0 gives 0.
	StatMean StatOp = iota
	// StatMin and StatMax are the smallest and largest Sum of the ranks,
	// NaN ones skipped (TRL's nanmin/nanmax of the gathered values); not
	// logged when every rank has NaN.
	StatMin
	StatMax
)

// Stat is one metric of a micro-batch.
type Stat struct {
	Key    string
	Sum, N float64
	Op     StatOp
}

// AddStats adds a micro-batch's metrics to acc, each reduced across the
// world as TRL reduces it (one all-gather). It is called from a Task's
// Loss, which every rank runs for every micro-batch.
func (o *Online[S]) AddStats(acc *metrics.Accumulator, st []Stat) {
	vals := make([]float64, 0, 2*len(st))
	for _, s := range st {
		vals = append(vals, s.Sum, s.N)
	}
	all := [][]float64{vals}
	if o.Dist.Size() > 1 {
		var err error
		if all, err = o.Dist.AllGather(vals); err != nil {
			panic(fmt.Errorf("%s: reduce the loss metrics: %w", o.Name, err))
		}
	}
	for i, s := range st {
		var sum, n float64
		v := math.NaN()
		for _, r := range all {
			x := r[2*i]
			sum += x
			n += r[2*i+1]
			switch {
			case math.IsNaN(x):
			case s.Op == StatMin && (math.IsNaN(v) || x < v), s.Op == StatMax && (math.IsNaN(v) || x > v):
				v = x
			}
		}
		if s.Op == StatMean {
			v = sum / math.Max(n, 1)
		}
		if !math.IsNaN(v) {
			acc.Add(s.Key, v)
		}
	}
}

// DecorateLog implements train.LogDecorator: the generation metrics of
// the logging window (each a mean over its generations, as TRL averages
// its metric lists), TRL's num_tokens and the epoch over the prompts.
func (o *Online[S]) DecorateLog(step int, vals map[string]float64) {
	o.window.Flush(vals)
	vals["num_tokens"] = o.numTokens
	vals["epoch"] = float64(o.gens*o.GenBatch/o.NumGenerations) / float64(len(o.Prompts))
	if o.LogCompletions && o.Dist.IsMain() {
		rows := make([]Logged, len(o.last))
		for i, s := range o.last {
			rows[i] = o.Logged(step, s)
		}
		WriteCompletions(o.OutDir, step, rows, o.Log)
	}
}

type onlineState struct {
	Window    *Window `json:"window"`
	NumTokens float64 `json:"num_tokens"`
	Gens      int     `json:"generations"`
}

// State implements train.Stateful: the logging window's generation
// metrics and the token count, so that a resumed run logs what an
// uninterrupted one does.
func (o *Online[S]) State() ([]byte, error) {
	return json.Marshal(onlineState{Window: &o.window, NumTokens: o.numTokens, Gens: o.gens})
}

// SetState implements train.Stateful.
func (o *Online[S]) SetState(b []byte) error {
	s := onlineState{Window: &o.window}
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: task_state.json: %w", o.Name, err)
	}
	o.numTokens, o.gens = s.NumTokens, s.Gens
	return nil
}

// LossBatch lays out a micro-batch's completions for the loss, the
// masked ones (mask_truncated_completions) left out of its mask.
func LossBatch(cs []*Completion, masked []bool, pad int, dev tensor.Device) *Batch {
	b := NewBatch(cs, pad, dev)
	for i, m := range masked {
		if m {
			for j := 0; j < b.T; j++ {
				b.CompMask[i*b.T+j] = 0
			}
		}
	}
	return b
}

// Attach fills o's models, rewards, sampler and prompts from env and its
// process group from dist.Current, and returns o.
func (o *Online[S]) Attach(env *Env) *Online[S] {
	o.Policy, o.Ref, o.RefIsPolicy = env.Policy, env.Ref, env.RefIsPolicy
	o.Rewards, o.Sampler, o.Prompts, o.Pad = env.Rewards, env.Sampler, env.Prompts, env.Pad
	o.Dist = dist.Current()
	return o
}

// Train runs the training loop over o's generations with task, which
// embeds o (GRPO's and RLOO's Run): max_steps from num_train_epochs when
// unset, no evaluation, the policy and tok saved.
func Train[S any](ctx context.Context, o *Online[S], task train.Task[*MicroBatch[S]], args train.Args, epochs float64,
	modelPath string, rawConfig []byte, inputs []train.Input, tok *tokenizer.Tokenizer) (*train.Result, error) {
	if args.MaxSteps <= 0 {
		args.MaxSteps = MaxSteps(epochs, len(o.Prompts), o.GenBatch/o.NumGenerations, o.Sched.Every(), o.Sched.GAS)
	}
	args.EvalStrategy = "no"
	o.Log.Info().Int("optimizer_steps", args.MaxSteps).Int("world_size", o.Dist.Size()).Msg(o.Name + " steps")
	if err := os.MkdirAll(args.OutputDir, 0o755); err != nil {
		return nil, err
	}
	tr := &train.Trainer[*MicroBatch[S]]{
		Args:   args,
		Models: &train.Single{M: o.Policy, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   task,
		Train:  o,
		Log:    o.Log,
		Config: rawConfig,
		Name:   o.Name,
		Model:  modelPath,
		Inputs: inputs,
		Dist:   o.Dist,
	}
	return tr.Run(ctx)
}
