// Package train is the training loop every rl trainer uses: AdamW with
// Hugging Face's learning-rate schedules, gradient accumulation and
// clipping, logging, evaluation, atomic checkpoints and exact resume. An
// algorithm plugs in as a Task that turns a batch into a loss.
package train

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rlsuite/rl/shared/check"
)

// Args are Hugging Face TrainingArguments, with their names and defaults.
type Args struct {
	OutputDir                 string  `yaml:"output_dir" help:"Where checkpoints, metrics, plots and the final model go." category:"training"`
	NumTrainEpochs            float64 `yaml:"num_train_epochs" help:"Epochs to train (fractions allowed); ignored when max_steps > 0." category:"training" range:"[0,inf)"`
	MaxSteps                  int     `yaml:"max_steps" help:"Total optimizer steps; -1 derives it from num_train_epochs." category:"training" range:"[-1,inf)"`
	PerDeviceTrainBatchSize   int     `yaml:"per_device_train_batch_size" help:"Examples per micro-batch in training." category:"training" range:"[1,inf)"`
	PerDeviceEvalBatchSize    int     `yaml:"per_device_eval_batch_size" help:"Examples per batch in evaluation." category:"training" range:"[1,inf)"`
	GradientAccumulationSteps int     `yaml:"gradient_accumulation_steps" help:"Micro-batches per optimizer step." category:"training" range:"[1,inf)"`
	LearningRate              float64 `yaml:"learning_rate" help:"Peak AdamW learning rate." category:"optimizer" range:"[0,inf)"`
	WeightDecay               float64 `yaml:"weight_decay" help:"AdamW weight decay (not applied to biases and norm weights)." category:"optimizer" range:"[0,inf)"`
	AdamBeta1                 float64 `yaml:"adam_beta1" help:"AdamW beta1." category:"optimizer" range:"[0,1)"`
	AdamBeta2                 float64 `yaml:"adam_beta2" help:"AdamW beta2." category:"optimizer" range:"[0,1)"`
	AdamEpsilon               float64 `yaml:"adam_epsilon" help:"AdamW epsilon." category:"optimizer" range:"(0,inf)"`
	MaxGradNorm               float64 `yaml:"max_grad_norm" help:"Clip the global gradient norm to this (0 disables)." category:"optimizer" range:"[0,inf)"`
	LRSchedulerType           string  `yaml:"lr_scheduler_type" help:"linear, cosine, constant or constant_with_warmup." category:"optimizer"`
	WarmupRatio               float64 `yaml:"warmup_ratio" help:"Fraction of the steps spent warming up (used when warmup_steps is 0)." category:"optimizer" range:"[0,1]"`
	WarmupSteps               int     `yaml:"warmup_steps" help:"Steps of linear warmup from 0." category:"optimizer" range:"[0,inf)"`
	LoggingSteps              int     `yaml:"logging_steps" help:"Log every this many steps (also the first step)." category:"logging" range:"[1,inf)"`
	EvalStrategy              string  `yaml:"eval_strategy" help:"When to evaluate: no, steps or epoch." category:"evaluation"`
	EvalOnStart               bool    `yaml:"eval_on_start" help:"Evaluate once before training (a baseline)." category:"evaluation"`
	EvalSteps                 int     `yaml:"eval_steps" help:"Evaluate every this many steps with eval_strategy steps (0: logging_steps)." category:"evaluation" range:"[0,inf)"`
	SaveStrategy              string  `yaml:"save_strategy" help:"When to save a checkpoint: no, steps or epoch." category:"checkpoints"`
	SaveSteps                 int     `yaml:"save_steps" help:"Save every this many steps with save_strategy steps." category:"checkpoints" range:"[0,inf)"`
	SaveTotalLimit            int     `yaml:"save_total_limit" help:"Keep at most this many checkpoints (0: all); the best one is kept too." category:"checkpoints" range:"[0,inf)"`
	LoadBestModelAtEnd        bool    `yaml:"load_best_model_at_end" help:"Finish with the checkpoint that scored best on metric_for_best_model." category:"checkpoints"`
	MetricForBestModel        string  `yaml:"metric_for_best_model" help:"Eval metric that picks the best checkpoint (eval_ prefix optional)." category:"checkpoints"`
	GreaterIsBetter           *bool   `yaml:"greater_is_better" help:"Whether a larger metric_for_best_model is better (default: false for losses, true otherwise)." category:"checkpoints"`
	Seed                      int64   `yaml:"seed" help:"Seed for initialisation, data order and sampling." category:"training"`
	ResumeFromCheckpoint      string  `yaml:"resume_from_checkpoint" help:"A checkpoint-N directory to resume from, or 'last' for this run's newest in output_dir." category:"checkpoints"`
	OverwriteOutputDir        bool    `yaml:"overwrite_output_dir" help:"Start even when output_dir holds another run's (or other) files, writing over them; other runs' checkpoints are left alone." category:"checkpoints"`
	BF16                      bool    `yaml:"bf16" help:"Compute in bfloat16 (autocast) with float32 master weights." category:"training"`
	// GradientCheckpointing recomputes each decoder layer in backward
	// instead of keeping its activations (HF's gradient_checkpointing; TRL
	// defaults it to true, rl to false: on the CPU the ~30% more compute
	// matters more than memory at the sizes rl trains).
	GradientCheckpointing bool `yaml:"gradient_checkpointing" help:"Recompute each decoder layer in the backward pass instead of storing its activations (less memory, about one more forward of compute)." category:"training"`
	// ReportTo is HF's report_to: tensorboard writes event files under
	// output_dir/runs/<time>_<host>/ as HF's TensorBoardCallback does; all
	// is every integration rl has (tensorboard); none (the default, as in
	// transformers v5) only metrics.jsonl and the plots.
	ReportTo []string `yaml:"report_to" help:"Where metrics go besides metrics.jsonl and plots: none, tensorboard (event files under output_dir/runs/), or all." category:"logging"`
}

// DefaultArgs returns TrainingArguments' defaults, except logging_steps
// (10, as TRL's configs set it).
func DefaultArgs() Args {
	return Args{
		OutputDir:                 "out",
		NumTrainEpochs:            3,
		MaxSteps:                  -1,
		PerDeviceTrainBatchSize:   8,
		PerDeviceEvalBatchSize:    8,
		GradientAccumulationSteps: 1,
		LearningRate:              5e-5,
		AdamBeta1:                 0.9,
		AdamBeta2:                 0.999,
		AdamEpsilon:               1e-8,
		MaxGradNorm:               1.0,
		LRSchedulerType:           "linear",
		LoggingSteps:              10,
		EvalStrategy:              "no",
		SaveStrategy:              "steps",
		SaveSteps:                 500,
		MetricForBestModel:        "loss",
		Seed:                      42,
	}
}

// Validate reports every problem with the arguments at once. The ranges of
// the numbers are the fields' range tags, checked by check.Fields.
func (a *Args) Validate() error {
	var errs []error
	bad := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if err := check.Fields(a); err != nil {
		errs = append(errs, err)
	}
	if a.OutputDir == "" {
		bad("output_dir must be set")
	}
	if a.MaxSteps <= 0 && !(a.NumTrainEpochs > 0) {
		bad("set max_steps > 0 or num_train_epochs > 0")
	}
	if _, ok := schedules[a.LRSchedulerType]; !ok {
		bad("lr_scheduler_type %q: want linear, cosine, constant or constant_with_warmup", a.LRSchedulerType)
	}
	for name, v := range map[string]string{"eval_strategy": a.EvalStrategy, "save_strategy": a.SaveStrategy} {
		if v != "no" && v != "steps" && v != "epoch" {
			bad("%s %q: want no, steps or epoch", name, v)
		}
	}
	if a.SaveStrategy == "steps" && a.SaveSteps <= 0 {
		bad("save_steps must be positive with save_strategy steps, got %d", a.SaveSteps)
	}
	if _, err := a.tensorBoard(); err != nil {
		errs = append(errs, err)
	}
	if a.LoadBestModelAtEnd {
		if a.EvalStrategy == "no" {
			bad("load_best_model_at_end needs an eval_strategy other than no")
		}
		if a.SaveStrategy != a.EvalStrategy {
			bad("load_best_model_at_end needs save_strategy (%s) to match eval_strategy (%s)", a.SaveStrategy, a.EvalStrategy)
		}
	}
	return errors.Join(errs...)
}

// tensorBoard reports whether report_to asks for TensorBoard (tensorboard
// or all), refusing integrations rl does not have.
func (a *Args) tensorBoard() (bool, error) {
	tb, none := false, false
	for _, r := range a.ReportTo {
		switch strings.ToLower(strings.TrimSpace(r)) {
		case "tensorboard", "all":
			tb = true
		case "none", "":
			none = true
		default:
			return false, fmt.Errorf("report_to %q: rl writes tensorboard (or none, all); for other trackers read metrics.jsonl", r)
		}
	}
	if tb && none {
		return false, fmt.Errorf("report_to %v: none cannot be combined with another value", a.ReportTo)
	}
	return tb, nil
}

// bestMetricKey is the metric name with the eval_ prefix.
func (a *Args) bestMetricKey() string {
	k := a.MetricForBestModel
	if len(k) < 5 || k[:5] != "eval_" {
		k = "eval_" + k
	}
	return k
}

// greaterIsBetter applies HF's default: false for losses.
func (a *Args) greaterIsBetter() bool {
	if a.GreaterIsBetter != nil {
		return *a.GreaterIsBetter
	}
	k := a.bestMetricKey()
	return !(k == "eval_loss" || len(k) > 5 && k[len(k)-5:] == "_loss")
}
