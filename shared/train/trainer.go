package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

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

// PostEvaler tasks derive more eval metrics from the averaged ones
// (e.g. perplexity from eval_loss).
type PostEvaler interface{ PostEval(m map[string]float64) }

// Stateful tasks (e.g. ones that sample) save and restore their own state
// with checkpoints.
type Stateful interface {
	State() ([]byte, error)
	SetState([]byte) error
}

// Models is what the trainer trains and saves.
type Models interface {
	// Params are the trainable tensors, with unique names.
	Params() []model.Param
	// Save writes the model(s) in Hugging Face layout into dir.
	Save(dir string) error
	// Load reads weights written by Save back into Params.
	Load(dir string) error
}

// Trainer runs the loop. Fill the fields, then call Run.
type Trainer[B Batch] struct {
	Args   Args
	Models Models
	Task   Task[B]
	Train  Dataset[B]
	Eval   Dataset[B] // may be nil
	Log    zerolog.Logger
	// Config is written as rl_config.yaml into the output dir (optional).
	Config []byte
	// StepHook, if set, runs after each optimizer step (PPO refreshes rollouts here).
	StepHook func(step int) error
	// StepsPerSchedule is the number of optimizer steps per learning-rate
	// scheduler step (default 1; PPO steps its scheduler once per rollout).
	StepsPerSchedule int

	opt     *AdamW
	logger  *metrics.Logger
	acc     metrics.Accumulator
	state   State
	tokens  int64
	started time.Time
}

// State is trainer_state.json, as transformers writes it.
type State struct {
	GlobalStep          int                  `json:"global_step"`
	Epoch               float64              `json:"epoch"`
	MaxSteps            int                  `json:"max_steps"`
	NumTrainEpochs      float64              `json:"num_train_epochs"`
	LoggingSteps        int                  `json:"logging_steps"`
	EvalSteps           int                  `json:"eval_steps"`
	SaveSteps           int                  `json:"save_steps"`
	TrainBatchSize      int                  `json:"train_batch_size"`
	BestMetric          *float64             `json:"best_metric"`
	BestModelCheckpoint *string              `json:"best_model_checkpoint"`
	BestGlobalStep      *int                 `json:"best_global_step"`
	NumInputTokensSeen  int64                `json:"num_input_tokens_seen"`
	LogHistory          []map[string]float64 `json:"log_history"`
	Seed                int64                `json:"seed"`
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
	mb := (n + a.PerDeviceTrainBatchSize - 1) / a.PerDeviceTrainBatchSize
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
		cache.epoch, cache.perm = epoch, order(t.Train.Len(), t.Args.Seed, epoch)
	}
	bs := t.Args.PerDeviceTrainBatchSize
	lo := pos * bs
	return cache.perm[lo:min(lo+bs, len(cache.perm))]
}

type epochCache struct {
	epoch int
	perm  []int
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
	p, err := t.plan()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(a.OutputDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if t.Config != nil {
		if err := fsutil.WriteFile(filepath.Join(a.OutputDir, "rl_config.yaml"), t.Config, 0o644); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	for _, prm := range t.Models.Params() {
		prm.T.SetRequiresGrad(true)
	}
	t.opt = NewAdamW(t.Models.Params(), a)
	defer t.opt.Free()
	t.state = State{MaxSteps: p.total, NumTrainEpochs: a.NumTrainEpochs, LoggingSteps: a.LoggingSteps,
		EvalSteps: a.evalEvery(), SaveSteps: a.SaveSteps, TrainBatchSize: a.PerDeviceTrainBatchSize, Seed: a.Seed}

	start := 0
	if a.ResumeFromCheckpoint != "" {
		dir, err := t.resolveResume()
		if err != nil {
			return nil, err
		}
		if err := t.resume(dir); err != nil {
			return nil, fmt.Errorf("train: resume from %s: %w", dir, err)
		}
		start = t.state.GlobalStep
		t.Log.Info().Str("checkpoint", dir).Int("step", start).Msg("resumed")
	}
	t.logger, err = metrics.NewLogger(a.OutputDir, t.Log, metrics.Options{TotalSteps: p.total, Resume: start > 0, ResumeStep: start})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer t.logger.Close()
	t.Log.Info().Int("examples", t.Train.Len()).Int("steps", p.total).Int("batch_size", a.PerDeviceTrainBatchSize).
		Int("grad_accum", a.GradientAccumulationSteps).Float64("epochs", float64(p.total*a.GradientAccumulationSteps)/float64(p.mbPerEpoch)).
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
	var lossSum float64
	var lossN int
	lastLog := map[string]float64{}
	for step := start; step < p.total; step++ {
		if ctx.Err() != nil {
			if err := t.saveCheckpoint(step); err != nil {
				return nil, err
			}
			return nil, ErrInterrupted
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
		for micro := 0; micro < a.GradientAccumulationSteps; micro++ {
			k := step*a.GradientAccumulationSteps + micro
			batch, err := t.Train.Batch(t.microBatch(k, p, &cache))
			if err != nil {
				return nil, fmt.Errorf("train: step %d: %w", step+1, err)
			}
			t.tokens += int64(batch.NumTokens())
			tensor.Tidy(func() {
				// The forward pass runs in its own scope that keeps only the
				// loss: its temporaries are freed before backward, so each
				// activation is held by autograd alone and released as soon
				// as backward has used it (PyTorch's lifetimes; measured
				// 1.14x on the tiny SFT step, see tools/bench breakdown).
				var loss *tensor.Tensor
				t.forward(func() {
					loss = t.Task.Loss(batch, &t.acc, true).DivScalar(float64(a.GradientAccumulationSteps)).Keep()
				})
				defer loss.Free()
				stepLoss += loss.ItemF64()
				loss.Backward()
			})
		}
		if math.IsNaN(stepLoss) || math.IsInf(stepLoss, 0) {
			return nil, fmt.Errorf("train: step %d: loss is %g; lower learning_rate or check the data", step+1, stepLoss)
		}
		gradNorm := t.opt.ClipGradNorm(a.MaxGradNorm)
		t.opt.Update(lr)
		t.opt.ZeroGrad()
		lossSum += stepLoss
		lossN++
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
			vals["loss"] = lossSum / float64(lossN)
			vals["grad_norm"] = gradNorm
			vals["learning_rate"] = lr
			vals["epoch"] = t.state.Epoch
			vals["num_tokens"] = float64(t.tokens)
			lossSum, lossN = 0, 0
			if d, ok := t.Task.(LogDecorator); ok {
				d.DecorateLog(done, vals)
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
		if a.SaveStrategy == "steps" && done%a.SaveSteps == 0 && done != p.total || a.SaveStrategy == "epoch" && epochEnd && done != p.total {
			if err := t.saveCheckpoint(done); err != nil {
				return nil, err
			}
		}
	}
	if a.SaveStrategy != "no" {
		if err := t.saveCheckpoint(p.total); err != nil {
			return nil, err
		}
	}
	if a.LoadBestModelAtEnd && t.state.BestModelCheckpoint != nil {
		t.Log.Info().Str("checkpoint", *t.state.BestModelCheckpoint).Float64(a.bestMetricKey(), *t.state.BestMetric).Msg("loading the best model")
		if err := t.Models.Load(*t.state.BestModelCheckpoint); err != nil {
			return nil, fmt.Errorf("train: load best model: %w", err)
		}
	}
	if err := t.Models.Save(a.OutputDir); err != nil {
		return nil, fmt.Errorf("train: save final model: %w", err)
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
	if err := t.writeState(a.OutputDir); err != nil {
		return nil, err
	}
	if paths, err := metrics.PlotAll(t.logger.History(), a.OutputDir); err != nil {
		t.Log.Warn().Err(err).Msg("plots")
	} else {
		t.Log.Info().Int("plots", len(paths)).Str("dir", filepath.Join(a.OutputDir, "plots")).Msg("wrote plots")
	}
	t.Log.Info().Str("output_dir", a.OutputDir).Str("runtime", metrics.FormatDuration(runtime)).
		Float64("tokens_per_s", math.Round(res.TokensPerS)).Msg("done")
	return res, nil
}

func (a *Args) evalEvery() int {
	if a.EvalSteps > 0 {
		return a.EvalSteps
	}
	return a.LoggingSteps
}

func (t *Trainer[B]) log(step int, vals map[string]float64) error {
	entry := map[string]float64{"step": float64(step)}
	for k, v := range vals {
		entry[k] = v
	}
	t.state.LogHistory = append(t.state.LogHistory, entry)
	return t.logger.Log(step, vals)
}

// Evaluate runs the eval set without gradients and returns eval_* metrics.
func (t *Trainer[B]) Evaluate() (out map[string]float64, err error) {
	defer tensor.Recover(&err, "evaluate")
	var acc metrics.Accumulator
	n := t.Eval.Len()
	bs := t.Args.PerDeviceEvalBatchSize
	began := time.Now()
	tensor.NoGrad(func() {
		for lo := 0; lo < n; lo += bs {
			idx := make([]int, 0, bs)
			for i := lo; i < min(lo+bs, n); i++ {
				idx = append(idx, i)
			}
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
	out = map[string]float64{}
	for k, v := range acc.Means() {
		out["eval_"+k] = v
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
		dir := filepath.Join(t.Args.OutputDir, checkpointName(step))
		t.state.BestMetric, t.state.BestModelCheckpoint, t.state.BestGlobalStep = &v, &dir, &step
	}
	return nil
}

func checkpointName(step int) string { return fmt.Sprintf("checkpoint-%d", step) }

// saveCheckpoint writes checkpoint-N atomically: model(s), optimizer,
// trainer state, task state.
func (t *Trainer[B]) saveCheckpoint(step int) error {
	dir := filepath.Join(t.Args.OutputDir, checkpointName(step))
	began := time.Now()
	err := fsutil.WriteDir(dir, func(tmp string) error {
		if err := t.Models.Save(tmp); err != nil {
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
		return t.writeState(tmp)
	})
	if err != nil {
		return fmt.Errorf("train: save %s: %w", dir, err)
	}
	t.Log.Info().Str("checkpoint", dir).Dur("took", time.Since(began)).Msg("saved")
	return t.rotate()
}

func (t *Trainer[B]) writeState(dir string) error {
	b, err := json.MarshalIndent(t.state, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, "trainer_state.json"), b, 0o644)
}

// Checkpoints lists complete checkpoint-N directories in dir by step.
func Checkpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type ck struct {
		step int
		path string
	}
	var cks []ck
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, "checkpoint-") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, "checkpoint-"))
		if err != nil { // checkpoint-N.tmp and .old are not complete checkpoints
			continue
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(filepath.Join(p, "trainer_state.json")); err != nil {
			continue
		}
		cks = append(cks, ck{n, p})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// rotate deletes the oldest checkpoints beyond save_total_limit, keeping the best.
func (t *Trainer[B]) rotate() error {
	limit := t.Args.SaveTotalLimit
	if limit <= 0 {
		return nil
	}
	cks, err := Checkpoints(t.Args.OutputDir)
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

func (t *Trainer[B]) resolveResume() (string, error) {
	dir := t.Args.ResumeFromCheckpoint
	if dir == "last" || dir == "latest" || dir == "true" {
		// finish an interrupted directory swap first
		entries, _ := os.ReadDir(t.Args.OutputDir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "checkpoint-") && strings.HasSuffix(e.Name(), fsutil.OldSuffix) {
				_ = fsutil.RecoverDir(filepath.Join(t.Args.OutputDir, strings.TrimSuffix(e.Name(), fsutil.OldSuffix)))
			}
		}
		cks, err := Checkpoints(t.Args.OutputDir)
		if err != nil || len(cks) == 0 {
			return "", fmt.Errorf("train: resume_from_checkpoint last: no complete checkpoint in %s", t.Args.OutputDir)
		}
		return cks[len(cks)-1], nil
	}
	if _, err := os.Stat(filepath.Join(dir, "trainer_state.json")); err != nil {
		return "", fmt.Errorf("train: resume_from_checkpoint %s: not a complete checkpoint (no trainer_state.json)", dir)
	}
	return dir, nil
}

func (t *Trainer[B]) resume(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("trainer_state.json: %w", err)
	}
	if err := t.Models.Load(dir); err != nil {
		return err
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, "optimizer.safetensors"))
	if err != nil {
		return err
	}
	if err := t.opt.LoadState(f); err != nil {
		return err
	}
	if s, ok := t.Task.(Stateful); ok {
		b, err := os.ReadFile(filepath.Join(dir, "task_state.json"))
		if err != nil {
			return err
		}
		if err := s.SetState(b); err != nil {
			return err
		}
	}
	// Keep the new run's settings but the old run's progress.
	t.state.GlobalStep, t.state.Epoch, t.state.LogHistory = st.GlobalStep, st.Epoch, st.LogHistory
	t.state.BestMetric, t.state.BestModelCheckpoint, t.state.BestGlobalStep = st.BestMetric, st.BestModelCheckpoint, st.BestGlobalStep
	t.state.NumInputTokensSeen = st.NumInputTokensSeen
	t.tokens = st.NumInputTokensSeen
	return nil
}
