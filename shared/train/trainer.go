package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// running counts training loops in progress (Running).
var running atomic.Int32

// Running reports whether a training loop is in progress in this process:
// an interrupt then finishes the step and saves a checkpoint; before the
// loop (loading, tokenising) there is nothing to save.
func Running() bool { return running.Load() > 0 }

// ErrInterrupted is returned when the run was stopped (Ctrl-C) after saving a checkpoint.
var ErrInterrupted = errors.New("train: interrupted; a checkpoint was saved: resume with --resume_from_checkpoint last")

// Batch is what a Dataset yields; NumTokens feeds the tokens/s figure.
type Batch interface{ NumTokens() int }

// Dataset yields batches by example index.
type Dataset[B Batch] interface {
	Len() int
	Batch(indices []int) (B, error)
}

// Task is an algorithm: the loss of a batch. Loss is called inside
// tensor.Tidy (and, when train is false, tensor.NoGrad); it panics with
// *tensor.Error on libtorch failures and may add metrics to m.
type Task[B Batch] interface {
	Loss(b B, m *metrics.Accumulator, train bool) *tensor.Tensor
}

// StepStarter tasks are told when an optimizer step begins, before its
// batches are drawn (PPO generates a new rollout at update boundaries).
type StepStarter interface{ BeginStep(step int) error }

// LogDecorator tasks adjust the values logged at a step (PPO reports
// episodes and its own epoch).
type LogDecorator interface {
	DecorateLog(step int, vals map[string]float64)
}

// ItemCounter tasks whose Loss is a mean over items (target tokens) are
// weighted as transformers weights them under gradient accumulation with
// num_items_in_batch: each micro-batch's mean counts by its share of the
// step's items, so the step's loss is the sum over its tokens divided by
// the tokens of the whole accumulated step, not a mean of micro-batch means
// (transformers' Trainer, get_batch_samples and compute_loss; TRL's
// SFTTrainer). Other tasks' losses are divided by the number of
// micro-batches (TRL's DPO, reward, ORPO... set model_accepts_loss_kwargs
// False, which does the same).
type ItemCounter[B Batch] interface{ NumItems(b B) int }

// PostEvaler tasks derive more eval metrics from the averaged ones
// (e.g. perplexity from eval_loss).
type PostEvaler interface{ PostEval(m map[string]float64) }

// EvalExtender tasks add metrics of their own to each evaluation, after
// the eval loss (SFT's predict_with_generate: ROUGE and BLEU of generated
// completions). The keys get the eval_ prefix.
type EvalExtender interface {
	ExtraEval() (map[string]float64, error)
}

// Stateful tasks (e.g. ones that sample) save and restore their own state
// with checkpoints.
type Stateful interface {
	State() ([]byte, error)
	SetState([]byte) error
}

// SaveBoundary tasks can resume only at some steps (PPO: at update
// boundaries, where a rollout is collected). ResumableAt returns nil for
// those, else why not. The trainer saves checkpoints only there: a Ctrl-C
// between two trains on to the next one, then saves.
type SaveBoundary interface{ ResumableAt(step int) error }

// Models is what the trainer trains and saves.
type Models interface {
	// Params are the trainable tensors, with unique names.
	Params() []model.Param
	// Save writes the model(s) in Hugging Face layout into dir.
	Save(dir string) error
	// Load reads weights written by Save back into Params.
	Load(dir string) error
	// SaveModels are the models Save writes (checkpoints save them in
	// their training dtype).
	SaveModels() []*model.Model
}

// Trainer runs the loop. Fill the fields, then call Run.
type Trainer[B Batch] struct {
	Args   Args
	Models Models
	Task   Task[B]
	Train  Dataset[B]
	Eval   Dataset[B] // may be nil
	Log    zerolog.Logger
	// Config is written as rl_config.yaml into the output dir (optional);
	// it is hashed into the run's identity.
	Config []byte
	// Name is the trainer ("sft", "dpo", ...) and Model what it starts from
	// (a directory, or "init:PRESET"): with the config hash, the run's
	// identity, recorded in its checkpoints (optional).
	Name, Model string
	// Inputs are the paths the run reads: the output dir may not be,
	// contain or lie inside one of them (optional).
	Inputs []Input
	// StepHook, if set, runs after each optimizer step (PPO refreshes rollouts here).
	StepHook func(step int) error
	// StepsPerSchedule is the number of optimizer steps per learning-rate
	// scheduler step (default 1; PPO steps its scheduler once per rollout).
	StepsPerSchedule int
	// StepsPerUnit is the number of optimizer steps in one of the run's
	// steps as the user sees them (default 1): PPO counts global_step,
	// logged steps and checkpoint-N in updates, as TRL does. The loop
	// counts optimizer steps; trainer_state.json, metrics.jsonl and
	// checkpoint names are in units.
	StepsPerUnit int
	// Sequential serves training examples in dataset order every epoch
	// instead of shuffling them (TRL's train_sampling_strategy
	// "sequential", which KTO needs: its KL completions are built against
	// the neighbours in a fixed-order batch).
	Sequential bool
	// Dist is the data-parallel process group (nil: dist.Current(), which
	// is nil in a single process). See the package doc's "Data parallel".
	Dist *dist.Group

	g       *dist.Group // the group in use (nil: one process)
	opt     *AdamW
	logger  *metrics.Logger
	tb      *metrics.TensorBoard // report_to tensorboard, else nil
	acc     metrics.Accumulator
	state   State
	id      Identity
	tokens  int64
	started time.Time
	// The logging window in progress: loss summed over lossN steps (acc
	// holds the task's metrics).
	lossSum float64
	lossN   int
}

// State is trainer_state.json: exactly the fields of transformers'
// TrainerState (trainer_callback.py), so that TrainerState.load_from_json
// reads it. rl's own state goes in rl_state.json.
type State struct {
	Epoch               float64              `json:"epoch"`
	GlobalStep          int                  `json:"global_step"`
	MaxSteps            int                  `json:"max_steps"`
	LoggingSteps        int                  `json:"logging_steps"`
	EvalSteps           int                  `json:"eval_steps"`
	SaveSteps           int                  `json:"save_steps"`
	TrainBatchSize      int                  `json:"train_batch_size"`
	NumTrainEpochs      float64              `json:"num_train_epochs"`
	NumInputTokensSeen  int64                `json:"num_input_tokens_seen"`
	TotalFlos           float64              `json:"total_flos"`
	LogHistory          []map[string]float64 `json:"log_history"`
	BestMetric          *float64             `json:"best_metric"`
	BestGlobalStep      *int                 `json:"best_global_step"`
	BestModelCheckpoint *string              `json:"best_model_checkpoint"`
	IsLocalProcessZero  bool                 `json:"is_local_process_zero"`
	IsWorldProcessZero  bool                 `json:"is_world_process_zero"`
	IsHyperParamSearch  bool                 `json:"is_hyper_param_search"`
	TrialName           *string              `json:"trial_name"`
	TrialParams         map[string]any       `json:"trial_params"`
	StatefulCallbacks   map[string]any       `json:"stateful_callbacks"`
}

// Result summarises a finished run.
type Result struct {
	Steps       int
	TrainLoss   float64
	Runtime     time.Duration
	TokensPerS  float64
	LastMetrics map[string]float64 // the last logged values (train and eval)
	BestMetric  *float64
}

// plan fixes the step arithmetic: micro-batches per epoch and total steps.
type plan struct {
	mbPerEpoch int
	total      int
}

func (t *Trainer[B]) plan() (plan, error) {
	a := &t.Args
	n := t.Train.Len()
	if n == 0 {
		return plan{}, errors.New("train: the training set is empty")
	}
	// DistributedSampler: each rank reads ceil(n/world) examples an epoch.
	perRank := (n + t.g.Size() - 1) / t.g.Size()
	mb := (perRank + a.PerDeviceTrainBatchSize - 1) / a.PerDeviceTrainBatchSize
	total := a.MaxSteps
	if total <= 0 {
		total = int(math.Ceil(a.NumTrainEpochs * float64(mb) / float64(a.GradientAccumulationSteps)))
	}
	return plan{mbPerEpoch: mb, total: max(total, 1)}, nil
}

// order is the shuffled example order of an epoch, from the seed.
func order(n int, seed int64, epoch int) []int {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(epoch)+0x5bd1e995))
	return r.Perm(n)
}

// microBatch returns the example indices of global micro-batch k.
func (t *Trainer[B]) microBatch(k int, p plan, cache *epochCache) []int {
	epoch, pos := k/p.mbPerEpoch, k%p.mbPerEpoch
	if cache.epoch != epoch || cache.perm == nil {
		cache.epoch, cache.perm, cache.shard = epoch, order(t.Train.Len(), t.Args.Seed, epoch), nil
		if t.Sequential {
			for i := range cache.perm {
				cache.perm[i] = i
			}
		}
	}
	if w := t.g.Size(); w > 1 && cache.shard == nil {
		cache.shard = shard(cache.perm, t.g.RankOf(), w)
	}
	own := cache.perm
	if cache.shard != nil {
		own = cache.shard
	}
	bs := t.Args.PerDeviceTrainBatchSize
	lo := pos * bs
	return own[lo:min(lo+bs, len(own))]
}

type epochCache struct {
	epoch int
	perm  []int
	shard []int // this rank's part of perm in a world > 1
}

// shard is rank's part of an epoch's order in a world of w, as
// torch.utils.data.DistributedSampler (drop_last=False) cuts it: the
// order padded with its own head to a multiple of w, then every w-th
// index from rank. Micro-batch k of the ranks together holds the examples
// of a single process's micro-batch k with a batch w times as large.
func shard(perm []int, rank, w int) []int {
	total := (len(perm) + w - 1) / w * w
	padded := make([]int, 0, total)
	for len(padded) < total {
		padded = append(padded, perm[:min(len(perm), total-len(padded))]...)
	}
	out := make([]int, 0, total/w)
	for i := rank; i < total; i += w {
		out = append(out, padded[i])
	}
	return out
}

// forward runs fn (a task's forward pass and loss) in its own tensor.Tidy
// scope, under bfloat16 autocast when Args.BF16 is set (HF's bf16=True:
// float32 master weights, matmuls in bfloat16).
func (t *Trainer[B]) forward(fn func()) {
	tensor.Tidy(func() { t.autocast(fn) })
}

// autocast runs fn under bfloat16 autocast when Args.BF16 is set.
func (t *Trainer[B]) autocast(fn func()) {
	if t.Args.BF16 {
		tensor.Autocast(tensor.BFloat16, fn)
		return
	}
	fn()
}

// Run trains until max steps, ctx cancellation (which saves a checkpoint
// and returns ErrInterrupted), or an error.
func (t *Trainer[B]) Run(ctx context.Context) (res *Result, err error) {
	defer tensor.Recover(&err, "train")
	a := &t.Args
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.g = t.Dist
	if t.g == nil {
		t.g = dist.Current()
	}
	main := t.g.IsMain()
	p, err := t.plan()
	if err != nil {
		return nil, err
	}
	if err := CheckInputs(a.OutputDir, t.Inputs); err != nil {
		return nil, err
	}
	t.id = t.identity()
	t.lossSum, t.lossN, t.tokens = 0, 0, 0
	t.acc.Reset()
	if main {
		unlock, err := t.prepareOutputDir()
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if t.g.Size() > 1 {
		// The others read the output dir (resume) once rank 0 has claimed
		// and cleaned it.
		if err := t.g.Barrier(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	return t.run(ctx, p)
}

// prepareOutputDir locks, claims and cleans the output dir (rank 0's job).
func (t *Trainer[B]) prepareOutputDir() (unlock func() error, err error) {
	a := &t.Args
	unlock, err = fsutil.Lock(a.OutputDir)
	if errors.Is(err, fsutil.ErrLockUnsupported) {
		t.Log.Warn().Err(err).Msg("output_dir not locked: make sure no other run writes into it")
		err = nil
	}
	if err != nil {
		if errors.Is(err, fsutil.ErrLocked) {
			return nil, fmt.Errorf("train: output_dir %w; wait for it to finish or choose another --output-dir", err)
		}
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := t.claimOutputDir(); err != nil {
		unlock()
		return nil, err
	}
	if err := t.cleanOutputDir(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// run is Run after the output dir is ready.
func (t *Trainer[B]) run(ctx context.Context, p plan) (res *Result, err error) {
	a := &t.Args
	main, world := t.g.IsMain(), t.g.Size()
	for _, prm := range t.Models.Params() {
		prm.T.SetRequiresGrad(true)
	}
	for _, m := range t.Models.SaveModels() {
		if m != nil {
			m.GradientCheckpointing = a.GradientCheckpointing
		}
	}
	t.opt = NewAdamW(t.Models.Params(), a)
	defer t.opt.Free()
	t.state = State{MaxSteps: p.total, NumTrainEpochs: a.NumTrainEpochs, LoggingSteps: a.LoggingSteps,
		EvalSteps: a.evalEvery(), SaveSteps: a.SaveSteps, TrainBatchSize: a.PerDeviceTrainBatchSize,
		IsLocalProcessZero: t.g == nil || t.g.LocalRank == 0, IsWorldProcessZero: main, StatefulCallbacks: map[string]any{}}

	start := 0
	if a.ResumeFromCheckpoint != "" {
		dir, err := t.resolveResume()
		if err != nil {
			return nil, err
		}
		if err := t.resume(dir, p); err != nil {
			return nil, fmt.Errorf("train: resume from %s: %w", dir, err)
		}
		start = t.state.GlobalStep
		t.Log.Info().Str("checkpoint", dir).Int("step", start).Msg("resumed")
	}
	if world > 1 {
		// DDP's constructor: every rank starts from rank 0's parameters.
		if err := t.g.Broadcast(paramTensors(t.Models.Params()), 0); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if main {
		if err := t.writeRunFile(); err != nil {
			return nil, err
		}
		if t.Config != nil {
			if err := fsutil.WriteFile(filepath.Join(a.OutputDir, "rl_config.yaml"), t.Config, 0o644); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
		}
		t.logger, err = metrics.NewLogger(a.OutputDir, t.Log, metrics.Options{TotalSteps: p.total / t.unit(), Resume: start > 0, ResumeStep: start / t.unit()})
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		defer func() { t.logger.Close(); t.logger = nil }()
	}
	if tb, _ := a.tensorBoard(); tb && main {
		if err := t.openTensorBoard(); err != nil {
			return nil, err
		}
		defer func() {
			if cerr := t.tb.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("train: %w", cerr)
			}
			t.tb = nil
		}()
	}
	if a.BF16 && !Device.IsCUDA() && main {
		warnSlowBF16(t.Log)
	}
	// HF's "Total train batch size (w. parallel, distributed & accumulation)".
	t.Log.Info().Int("examples", t.Train.Len()).Int("steps", p.total).Int("batch_size", a.PerDeviceTrainBatchSize).
		Int("grad_accum", a.GradientAccumulationSteps).Int("world_size", world).
		Int("total_batch_size", a.PerDeviceTrainBatchSize*a.GradientAccumulationSteps*world).Float64("epochs", float64(p.total*a.GradientAccumulationSteps)/float64(p.mbPerEpoch)).
		Msg("training")

	if a.EvalOnStart && t.Eval != nil && start == 0 {
		ev, err := t.Evaluate()
		if err != nil {
			return nil, err
		}
		if err := t.log(0, ev); err != nil {
			return nil, err
		}
	}
	t.started = time.Now()
	startTokens := t.tokens
	var cache epochCache
	warned := false
	lastLog := map[string]float64{}
	// From here on an interrupt saves a checkpoint (Running); before it,
	// there is nothing to save and a Ctrl-C quits at once.
	running.Add(1)
	defer running.Add(-1)
	for step := start; step < p.total; step++ {
		if world == 1 && ctx.Err() != nil {
			if t.resumableAt(step) {
				if err := t.saveCheckpoint(step); err != nil {
					return nil, err
				}
				return nil, ErrInterrupted
			}
			if !warned {
				t.Log.Warn().Int("step", step).Msg("interrupt: training on to the next step a checkpoint can resume from")
				warned = true
			}
		}
		lr := a.LR(step, p.total)
		if n := t.StepsPerSchedule; n > 1 {
			lr = a.LR(step/n, (p.total+n-1)/n)
		}
		if ss, ok := t.Task.(StepStarter); ok {
			// Under the same autocast as the forward passes: PPO's rollouts
			// (accelerate wraps the model's forward, generation included).
			var err error
			t.autocast(func() { err = ss.BeginStep(step) })
			if err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step+1, err)
			}
		}
		var stepLoss float64
		batches := make([]B, a.GradientAccumulationSteps)
		for micro := range batches {
			k := step*a.GradientAccumulationSteps + micro
			if batches[micro], err = t.Train.Batch(t.microBatch(k, p, &cache)); err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step+1, err)
			}
		}
		// Dropout draws from libtorch's generator: seeded from (seed, step)
		// so that a resumed run draws the same masks as an uninterrupted one
		// (and each rank its own).
		tensor.ManualSeed(stepSeed(a.Seed+int64(t.g.RankOf())*0x3c6ef372, step))
		weights, stepTokens, stop, err := t.stepTotals(batches, ctx.Err() != nil)
		if err != nil {
			return nil, fmt.Errorf("train: step %d: %w", step+1, err)
		}
		if stop { // every rank agreed, at the same step
			if main {
				if err := t.saveCheckpoint(step); err != nil {
					return nil, err
				}
			}
			if err := t.g.Barrier(); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			return nil, ErrInterrupted
		}
		t.tokens += stepTokens
		for micro, batch := range batches {
			if step == start && micro == 0 { // the plan, once the batch shape is known
				planMemory(t.Models.SaveModels(), t.Models.Params(), a, batch.NumTokens()).log(t.Log)
			}
			if weights[micro] == 0 {
				continue // no items: nothing to learn, and its mean is NaN
			}
			tensor.Tidy(func() {
				// The forward pass runs in its own scope that keeps only the
				// loss: its temporaries are freed before backward, so each
				// activation is held by autograd alone and released as soon
				// as backward has used it (PyTorch's lifetimes; measured
				// 1.14x on the tiny SFT step, see tools/bench breakdown).
				var loss *tensor.Tensor
				t.forward(func() {
					loss = t.Task.Loss(batch, &t.acc, true).MulScalar(weights[micro]).Keep()
				})
				defer loss.Free()
				stepLoss += loss.ItemF64()
				loss.Backward()
				if a.GradientCheckpointing { // recompute the checkpointed layers, under the forward's autocast
					t.autocast(func() {
						for _, m := range t.Models.SaveModels() {
							if m != nil {
								m.FinishBackward()
							}
						}
					})
				}
			})
		}
		if math.IsNaN(stepLoss) || math.IsInf(stepLoss, 0) {
			return nil, fmt.Errorf("train: step %d: loss is %g; lower learning_rate or check the data", step+1, stepLoss)
		}
		if world > 1 {
			// DDP: gradients averaged across ranks after backward, before
			// clipping (only at the sync step of an accumulation).
			if err := t.g.AllReduceGrads(paramTensors(t.Models.Params())); err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step+1, err)
			}
		}
		gradNorm := t.opt.ClipGradNorm(a.MaxGradNorm)
		t.opt.Update(lr)
		t.opt.ZeroGrad()
		t.lossSum += stepLoss
		t.lossN++
		done := step + 1
		t.state.GlobalStep = done
		t.state.Epoch = float64(done*a.GradientAccumulationSteps) / float64(p.mbPerEpoch)
		t.state.NumInputTokensSeen = t.tokens
		if t.StepHook != nil {
			if err := t.StepHook(done); err != nil {
				return nil, err
			}
		}
		if done%a.LoggingSteps == 0 || done == 1 && t.StepsPerSchedule <= 1 || done == p.total {
			vals := t.acc.Means()
			t.acc.Reset()
			vals["loss"] = t.lossSum / float64(t.lossN)
			vals["grad_norm"] = gradNorm
			// HF logs the scheduler's rate after its step: the next step's
			vals["learning_rate"] = t.nextLR(done, p.total)
			vals["epoch"] = t.state.Epoch
			vals["num_tokens"] = float64(t.tokens)
			t.lossSum, t.lossN = 0, 0
			if d, ok := t.Task.(LogDecorator); ok {
				d.DecorateLog(done, vals)
			}
			if err := t.worldMean(vals, "grad_norm", "learning_rate", "epoch", "num_tokens"); err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step+1, err)
			}
			if err := t.log(done, vals); err != nil {
				return nil, err
			}
			for k, v := range vals {
				lastLog[k] = v
			}
		}
		epochEnd := (done*a.GradientAccumulationSteps)/p.mbPerEpoch > ((done-1)*a.GradientAccumulationSteps)/p.mbPerEpoch
		if t.Eval != nil && (a.EvalStrategy == "steps" && done%a.evalEvery() == 0 || a.EvalStrategy == "epoch" && epochEnd || a.EvalStrategy != "no" && done == p.total) {
			ev, err := t.Evaluate()
			if err != nil {
				return nil, err
			}
			if err := t.log(done, ev); err != nil {
				return nil, err
			}
			for k, v := range ev {
				lastLog[k] = v
			}
			if err := t.trackBest(done, ev); err != nil {
				return nil, err
			}
		}
		if (a.SaveStrategy == "steps" && done%a.SaveSteps == 0 || a.SaveStrategy == "epoch" && epochEnd) && done != p.total && t.resumableAt(done) {
			if err := t.saveCheckpointWorld(done); err != nil {
				return nil, err
			}
		}
	}
	if a.SaveStrategy != "no" {
		if err := t.saveCheckpointWorld(p.total); err != nil {
			return nil, err
		}
	}
	if a.LoadBestModelAtEnd && t.state.BestModelCheckpoint != nil {
		t.Log.Info().Str("checkpoint", *t.state.BestModelCheckpoint).Float64(a.bestMetricKey(), *t.state.BestMetric).Msg("loading the best model")
		if err := t.Models.Load(*t.state.BestModelCheckpoint); err != nil {
			return nil, fmt.Errorf("train: load best model: %w", err)
		}
	}
	if main {
		if err := t.Models.Save(a.OutputDir); err != nil {
			return nil, fmt.Errorf("train: save final model: %w", err)
		}
	}
	runtime := time.Since(t.started)
	res = &Result{Steps: p.total, Runtime: runtime, LastMetrics: lastLog, BestMetric: t.state.BestMetric,
		TokensPerS: float64(t.tokens-startTokens) / runtime.Seconds()}
	var sum float64
	var n int
	for _, h := range t.state.LogHistory {
		if v, ok := h["loss"]; ok {
			sum += v
			n++
		}
	}
	if n > 0 {
		res.TrainLoss = sum / float64(n)
	}
	// HF's trainer logs these once at the end of train().
	final := map[string]float64{"train_runtime": runtime.Seconds(), "train_loss": res.TrainLoss,
		"train_tokens_per_second": res.TokensPerS, "train_steps_per_second": float64(p.total-start) / runtime.Seconds()}
	if err := t.log(p.total, final); err != nil {
		return nil, err
	}
	if !main {
		return res, nil // rank 0 writes the outputs
	}
	if err := t.writeState(a.OutputDir); err != nil {
		return nil, err
	}
	cardMetrics := map[string]float64{}
	for k, v := range lastLog {
		cardMetrics[k] = v
	}
	for k, v := range final {
		cardMetrics[k] = v
	}
	if err := t.writeModelCard(cardMetrics); err != nil {
		return nil, err
	}
	if paths, err := metrics.PlotAll(t.logger.History(), a.OutputDir); err != nil {
		t.Log.Warn().Err(err).Msg("plots")
	} else {
		t.Log.Info().Int("plots", len(paths)).Str("dir", filepath.Join(a.OutputDir, "plots")).Msg("wrote plots")
	}
	t.Log.Info().Str("output_dir", a.OutputDir).Str("runtime", metrics.FormatDuration(runtime)).
		Float64("tokens_per_s", math.Round(res.TokensPerS)).Str("peak_rss", gib(peakRSS())).Msg("done")
	return res, nil
}

// stepSeed mixes the run's seed and a step number (splitmix64's finaliser).
func stepSeed(seed int64, step int) int64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 + uint64(step)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return int64((z ^ z>>31) >> 1)
}

// microWeights are the factors of each micro-batch's loss in the step:
// its share of the step's items for an ItemCounter task, else
// 1/gradient_accumulation_steps.
func (t *Trainer[B]) microWeights(batches []B) []float64 {
	w := make([]float64, len(batches))
	ic, ok := t.Task.(ItemCounter[B])
	if !ok {
		for i := range w {
			w[i] = 1 / float64(len(batches))
		}
		return w
	}
	total := 0
	n := make([]int, len(batches))
	for i, b := range batches {
		n[i] = ic.NumItems(b)
		total += n[i]
	}
	for i := range w {
		if total > 0 {
			w[i] = float64(n[i]) / float64(total)
		}
	}
	return w
}

// nextLR is the learning rate after done optimizer steps, the value HF's
// Trainer logs at step done (lr_scheduler.get_last_lr() after the
// scheduler stepped).
func (t *Trainer[B]) nextLR(done, total int) float64 {
	if n := t.StepsPerSchedule; n > 1 {
		return t.Args.LR(done/n, (total+n-1)/n)
	}
	return t.Args.LR(done, total)
}

// resumableAt reports whether a checkpoint at step can be resumed.
func (t *Trainer[B]) resumableAt(step int) bool {
	sb, ok := t.Task.(SaveBoundary)
	return !ok || sb.ResumableAt(step) == nil
}

func (a *Args) evalEvery() int {
	if a.EvalSteps > 0 {
		return a.EvalSteps
	}
	return a.LoggingSteps
}

// unit is StepsPerUnit, at least 1.
func (t *Trainer[B]) unit() int { return max(t.StepsPerUnit, 1) }

func (t *Trainer[B]) log(step int, vals map[string]float64) error {
	step /= t.unit()
	entry := map[string]float64{"step": float64(step)}
	for k, v := range vals {
		entry[k] = v
	}
	t.state.LogHistory = append(t.state.LogHistory, entry)
	if t.logger == nil {
		return nil // not rank 0: rank 0 alone logs
	}
	if t.tb != nil {
		if err := t.tb.Scalars(step, vals); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return t.logger.Log(step, vals)
}

// openTensorBoard starts an event file in HF's default logging dir and
// writes the effective config as the "args" text, as TensorBoardCallback
// does on train begin.
func (t *Trainer[B]) openTensorBoard() error {
	tb, err := metrics.NewTensorBoard(metrics.TensorBoardRunDir(t.Args.OutputDir, time.Now()))
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.tb = tb
	cfg := t.Config
	if cfg == nil {
		if cfg, err = json.MarshalIndent(t.Args, "", "  "); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if err := tb.Text(0, "args", string(cfg)); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.Log.Info().Str("dir", filepath.Dir(tb.Path())).Msg("tensorboard")
	return nil
}

// Evaluate runs the eval set without gradients and returns eval_* metrics.
func (t *Trainer[B]) Evaluate() (out map[string]float64, err error) {
	defer tensor.Recover(&err, "evaluate")
	var acc metrics.Accumulator
	own := t.evalShard()
	n := len(own)
	bs := t.Args.PerDeviceEvalBatchSize
	began := time.Now()
	tensor.NoGrad(func() {
		for lo := 0; lo < n; lo += bs {
			idx := slices.Clone(own[lo:min(lo+bs, n)])
			batch, e := t.Eval.Batch(idx)
			if e != nil {
				err = e
				return
			}
			var m metrics.Accumulator
			t.forward(func() {
				loss := t.Task.Loss(batch, &m, false)
				acc.AddWeighted("loss", loss.ItemF64(), float64(len(idx)))
			})
			for k, v := range m.Means() {
				acc.AddWeighted(k, v, float64(len(idx)))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if len(own) < t.Eval.Len() {
		if err := t.worldSum(&acc); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		t.Log.Info().Int("examples", len(own)).Int("of", t.Eval.Len()).Int("world_size", t.g.Size()).Msg("evaluated this rank's shard")
	}
	out = map[string]float64{}
	for k, v := range acc.Means() {
		out["eval_"+k] = v
	}
	if ex, ok := t.Task.(EvalExtender); ok {
		extra, err := ex.ExtraEval()
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		for k, v := range extra {
			out["eval_"+k] = v
		}
	}
	out["eval_runtime"] = time.Since(began).Seconds()
	if pe, ok := t.Task.(PostEvaler); ok {
		pe.PostEval(out)
	}
	return out, nil
}

func (t *Trainer[B]) trackBest(step int, ev map[string]float64) error {
	key := t.Args.bestMetricKey()
	v, ok := ev[key]
	if !ok {
		if t.Args.MetricForBestModel == "loss" && !t.Args.LoadBestModelAtEnd {
			return nil // the default, for a task without an eval loss
		}
		var names []string
		for k := range ev {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("train: metric_for_best_model %q: the evaluation has no %s; available: %s", t.Args.MetricForBestModel, key, strings.Join(names, ", "))
	}
	better := t.state.BestMetric == nil || (t.Args.greaterIsBetter() && v > *t.state.BestMetric) || (!t.Args.greaterIsBetter() && v < *t.state.BestMetric)
	if better {
		dir := filepath.Join(t.Args.OutputDir, checkpointName(step/t.unit()))
		t.state.BestMetric, t.state.BestModelCheckpoint, t.state.BestGlobalStep = &v, &dir, &step
	}
	return nil
}

func checkpointName(step int) string { return fmt.Sprintf("checkpoint-%d", step) }

// saveCheckpoint writes checkpoint-N atomically: model(s), optimizer,
// trainer state, task state.
func (t *Trainer[B]) saveCheckpoint(step int) error {
	dir := filepath.Join(t.Args.OutputDir, checkpointName(step/t.unit()))
	began := time.Now()
	err := fsutil.WriteDir(dir, func(tmp string) error {
		// checkpoints keep the training dtype (bit-exact resume), the final
		// model the source's
		var restore []func()
		for _, m := range t.Models.SaveModels() {
			if m != nil {
				restore = append(restore, m.SaveExactly())
			}
		}
		err := t.Models.Save(tmp)
		for _, r := range restore {
			r()
		}
		if err != nil {
			return err
		}
		st, err := t.opt.State()
		if err != nil {
			return err
		}
		if err := safetensors.WriteFile(filepath.Join(tmp, "optimizer.safetensors"), st); err != nil {
			return err
		}
		if s, ok := t.Task.(Stateful); ok {
			b, err := s.State()
			if err != nil {
				return err
			}
			if err := fsutil.WriteFile(filepath.Join(tmp, "task_state.json"), b, 0o644); err != nil {
				return err
			}
		}
		if err := t.writeState(tmp); err != nil {
			return err
		}
		return t.writeRLState(tmp) // last: the checkpoint is complete once it exists
	})
	if err != nil {
		return fmt.Errorf("train: save %s: %w", dir, err)
	}
	t.Log.Info().Str("checkpoint", dir).Dur("took", time.Since(began)).Msg("saved")
	return t.rotate()
}

// writeRLState writes rl_state.json: the run's identity, seed and the
// logging window in progress.
func (t *Trainer[B]) writeRLState(dir string) error {
	sums, weights := t.acc.Snapshot()
	s := rlState{Format: 1, Run: t.id, Seed: t.Args.Seed, GlobalStep: t.state.GlobalStep,
		Window: window{Steps: t.lossN, LossSum: jsonFloat(t.lossSum), Sums: toJSONFloats(sums), Weights: toJSONFloats(weights)}}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, RLStateFile), append(b, '\n'), 0o644)
}

// writeState writes trainer_state.json, its step counts in units.
func (t *Trainer[B]) writeState(dir string) error {
	st := t.state
	if u := t.unit(); u > 1 {
		st.GlobalStep, st.MaxSteps = st.GlobalStep/u, st.MaxSteps/u
		st.LoggingSteps, st.EvalSteps, st.SaveSteps = max(st.LoggingSteps/u, 1), st.EvalSteps/u, st.SaveSteps/u
		if st.BestGlobalStep != nil {
			b := *st.BestGlobalStep / u
			st.BestGlobalStep = &b
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, "trainer_state.json"), b, 0o644)
}

// rotate deletes the oldest of this run's checkpoints beyond
// save_total_limit, keeping the best; other runs' are never touched.
func (t *Trainer[B]) rotate() error {
	limit := t.Args.SaveTotalLimit
	if limit <= 0 {
		return nil
	}
	cks, _, err := t.ownCheckpoints()
	if err != nil {
		return err
	}
	if best := t.state.BestModelCheckpoint; best != nil && limit == 1 && len(cks) > 0 && filepath.Clean(cks[len(cks)-1]) != filepath.Clean(*best) {
		limit = 2 // keep the best and the last, as transformers does
	}
	for len(cks) > limit {
		victim := cks[0]
		if t.state.BestModelCheckpoint != nil && filepath.Clean(*t.state.BestModelCheckpoint) == filepath.Clean(victim) {
			if len(cks) == 1 {
				break
			}
			victim = cks[1]
			cks = append(cks[:1], cks[2:]...)
		} else {
			cks = cks[1:]
		}
		if err := os.RemoveAll(victim); err != nil {
			return err
		}
	}
	return nil
}

// resolveResume turns resume_from_checkpoint into a checkpoint directory:
// "last" is this run's newest complete checkpoint in the output dir.
func (t *Trainer[B]) resolveResume() (string, error) {
	dir := t.Args.ResumeFromCheckpoint
	if isLast(dir) {
		own, others, err := t.ownCheckpoints()
		if err != nil {
			return "", fmt.Errorf("train: resume_from_checkpoint last: %w", err)
		}
		if len(own) == 0 {
			msg := fmt.Sprintf("train: resume_from_checkpoint last: no complete checkpoint of this run (%s) in %s", t.id, t.Args.OutputDir)
			if len(others) > 0 {
				msg += "; there are other runs' (or other settings') checkpoints: " + strings.Join(others, "; ") +
					"; to continue one of them, pass its path to --resume-from-checkpoint"
			}
			return "", errors.New(msg)
		}
		return own[len(own)-1], nil
	}
	if err := fsutil.RecoverDir(dir); err != nil {
		return "", fmt.Errorf("train: resume_from_checkpoint %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("train: resume_from_checkpoint %s: %w", dir, err)
	}
	if !complete(dir) {
		return "", fmt.Errorf("train: resume_from_checkpoint %s: not a complete checkpoint (no %s: it was not fully written); pick another checkpoint-N", dir, RLStateFile)
	}
	s, err := readRLState(dir)
	if err != nil {
		return "", fmt.Errorf("train: resume_from_checkpoint %s: %w", dir, err)
	}
	switch {
	case s == nil:
		t.Log.Warn().Str("checkpoint", dir).Msg("the checkpoint has no run identity (an older rl wrote it): resuming it as asked")
	case s.Run.Trainer != t.id.Trainer:
		return "", fmt.Errorf("train: resume_from_checkpoint %s: it is a checkpoint of rl %s, not of rl %s; resume it with rl %s, or start this run without --resume-from-checkpoint", dir, s.Run.Trainer, t.id.Trainer, s.Run.Trainer)
	case s.Run != t.id:
		t.Log.Warn().Str("checkpoint", dir).Str("checkpoint_run", s.Run.String()).Str("this_run", t.id.String()).Msg("the checkpoint was written with other settings: resuming it with this run's")
	}
	return dir, nil
}

// resume loads a checkpoint's weights, optimizer and task state and takes
// its progress, after checking that the progress makes sense.
func (t *Trainer[B]) resume(dir string, p plan) error {
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("trainer_state.json: %w", err)
	}
	if u := t.unit(); u > 1 { // units to optimizer steps
		st.GlobalStep *= u
		if st.BestGlobalStep != nil {
			b := *st.BestGlobalStep * u
			st.BestGlobalStep = &b
		}
	}
	rs, err := readRLState(dir)
	if err != nil {
		return err
	}
	if err := t.checkState(&st, rs, p); err != nil {
		return err
	}
	if err := t.Models.Load(dir); err != nil {
		return err
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, "optimizer.safetensors"))
	if err != nil {
		return err
	}
	if err := t.opt.LoadState(f); err != nil {
		return fmt.Errorf("optimizer.safetensors: %w", err)
	}
	if t.opt.Step != st.GlobalStep {
		return fmt.Errorf("optimizer.safetensors is at step %d but trainer_state.json at global_step %d: the checkpoint is inconsistent; resume from another one", t.opt.Step, st.GlobalStep)
	}
	if s, ok := t.Task.(Stateful); ok {
		b, err := os.ReadFile(filepath.Join(dir, "task_state.json"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// An older rl saved no state for this task.
			t.Log.Warn().Str("checkpoint", dir).Msg("the checkpoint has no task_state.json (an older rl wrote it): the task starts from its initial state")
		case err != nil:
			return err
		default:
			if err := s.SetState(b); err != nil {
				return err
			}
		}
	}
	// Keep the new run's settings but the old run's progress.
	t.state.GlobalStep, t.state.Epoch, t.state.LogHistory = st.GlobalStep, st.Epoch, st.LogHistory
	t.state.BestMetric, t.state.BestModelCheckpoint, t.state.BestGlobalStep = st.BestMetric, st.BestModelCheckpoint, st.BestGlobalStep
	t.state.NumInputTokensSeen, t.state.TotalFlos = st.NumInputTokensSeen, st.TotalFlos
	t.tokens = st.NumInputTokensSeen
	if rs != nil { // the logging window in progress, so that its logged means match an uninterrupted run
		t.lossSum, t.lossN = float64(rs.Window.LossSum), rs.Window.Steps
		t.acc.Restore(fromJSONFloats(rs.Window.Sums), fromJSONFloats(rs.Window.Weights))
	}
	return nil
}

// checkState validates a checkpoint's trainer_state.json (and
// rl_state.json, when there is one) against this run.
func (t *Trainer[B]) checkState(st *State, rs *rlState, p plan) error {
	var errs []error
	bad := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case st.GlobalStep < 0:
		bad("trainer_state.json: global_step %d is negative", st.GlobalStep)
	case st.GlobalStep > p.total:
		bad("trainer_state.json: global_step %d is past this run's %d steps: raise max_steps (or num_train_epochs) to continue it", st.GlobalStep, p.total)
	}
	if !finite(st.Epoch) || st.Epoch < 0 {
		bad("trainer_state.json: epoch %g must be finite and >= 0", st.Epoch)
	}
	if st.NumInputTokensSeen < 0 {
		bad("trainer_state.json: num_input_tokens_seen %d is negative", st.NumInputTokensSeen)
	}
	if st.BestGlobalStep != nil && (*st.BestGlobalStep < 0 || *st.BestGlobalStep > st.GlobalStep) {
		bad("trainer_state.json: best_global_step %d is outside 0..global_step %d", *st.BestGlobalStep, st.GlobalStep)
	}
	if st.BestMetric != nil && math.IsNaN(*st.BestMetric) {
		bad("trainer_state.json: best_metric is NaN")
	}
	if rs != nil {
		w := rs.Window
		if rs.GlobalStep != st.GlobalStep {
			bad("%s: global_step %d differs from trainer_state.json's %d", RLStateFile, rs.GlobalStep, st.GlobalStep)
		}
		if w.Steps < 0 || w.Steps > st.GlobalStep {
			bad("%s: logging_window.steps %d is outside 0..global_step %d", RLStateFile, w.Steps, st.GlobalStep)
		}
		if !finite(float64(w.LossSum)) {
			bad("%s: logging_window.loss_sum %g is not finite", RLStateFile, float64(w.LossSum))
		}
		for k, v := range w.Weights {
			if !(v > 0) || math.IsInf(float64(v), 0) {
				bad("%s: logging_window.metric_weights[%q] %g must be positive", RLStateFile, k, float64(v))
			}
		}
	}
	if sb, ok := t.Task.(SaveBoundary); ok && len(errs) == 0 {
		if err := sb.ResumableAt(st.GlobalStep); err != nil {
			bad("trainer_state.json: global_step %d: %w", st.GlobalStep, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; the checkpoint is damaged or of another run: resume from another checkpoint", errors.Join(errs...))
	}
	return nil
}

// warnSlowBF16 warns when this CPU multiplies bfloat16 more slowly than
// float32 (an Intel Xeon without AMX, as some VMs expose it: 160 against
// 277 GFLOP/s on 2 cores of one), where --bf16 slows training down.
func warnSlowBF16(log zerolog.Logger) {
	bf, fp, err := tensor.BF16Speed()
	if err != nil || bf >= fp {
		return
	}
	log.Warn().Float64("bf16_gflops", math.Round(bf)).Float64("fp32_gflops", math.Round(fp)).
		Msg("--bf16: this CPU multiplies bfloat16 more slowly than float32 (no AMX), so training runs slower than without --bf16")
}
