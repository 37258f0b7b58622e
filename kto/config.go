// Package kto implements Kahneman-Tversky Optimization (Ethayarajh et al.,
// 2024, arXiv:2402.01306), mirroring TRL's KTOTrainer: a policy trained
// from completions labelled desirable or undesirable, against a frozen
// reference model.
package kto

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Sampling strategies (TRL's train_sampling_strategy).
const (
	Sequential = "sequential" // dataset order every epoch (KTOConfig's default)
	Random     = "random"     // shuffled per epoch from the seed
)

// Config is TRL's KTOConfig plus the script arguments that say which model
// and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// kto's own model settings.
	RefModel string `yaml:"ref_model" help:"Reference model directory (default: a frozen copy of model_name_or_path; with use_peft, the policy with its adapters disabled)." category:"model"`

	// KTOConfig.

	// Beta is TRL's beta: the deviation from the reference (higher: less).
	// Default 0.1.
	Beta float64 `yaml:"beta" help:"Deviation from the reference model: higher beta, less deviation." category:"kto" range:"(0,inf)"`
	// LossType is kto (default) or apo_zero_unpaired.
	LossType string `yaml:"loss_type" help:"kto (Ethayarajh et al. 2024) or apo_zero_unpaired (D'Oosterlinck et al. 2024, no KL term)." category:"kto"`
	// DesirableWeight weighs the losses of desirable rows. Default 1.
	DesirableWeight float64 `yaml:"desirable_weight" help:"Weight of the desirable (label true) losses, to counter unequal class sizes." category:"kto" range:"[0,inf)"`
	// UndesirableWeight weighs the losses of undesirable rows. Default 1.
	UndesirableWeight float64 `yaml:"undesirable_weight" help:"Weight of the undesirable (label false) losses, to counter unequal class sizes." category:"kto" range:"[0,inf)"`
	// MaxLength bounds each row (prompt + completion), cut at its end; rows
	// whose prompt alone fills it are dropped. Default 1024.
	MaxLength int `yaml:"max_length" help:"Maximum tokens of prompt + completion; longer rows lose their end, rows whose prompt fills it are dropped." category:"kto" range:"[2,inf)"`
	// DisableDropout turns dropout off in the policy (TRL's
	// disable_dropout, default true).
	DisableDropout bool `yaml:"disable_dropout" help:"Train without the model's dropout (TRL's default)." category:"kto"`
	// PrecomputeRefLogProbs computes the reference log-probs of every row
	// (and its KL row) once before training and keeps no reference model.
	// Default false.
	PrecomputeRefLogProbs bool `yaml:"precompute_ref_log_probs" help:"Compute the reference log-probs of all rows before training; no reference model is kept." category:"kto"`
	// PrecomputeRefBatchSize is the batch size of that pass (0: the
	// train/eval batch sizes). Default none.
	PrecomputeRefBatchSize int `yaml:"precompute_ref_batch_size" help:"Batch size for precompute_ref_log_probs (0: per_device_train/eval_batch_size)." category:"kto" range:"[0,inf)"`
	// TrainSamplingStrategy is sequential (KTOConfig's default, which the
	// kto loss needs) or random.
	TrainSamplingStrategy string `yaml:"train_sampling_strategy" help:"sequential (dataset order; needed by loss_type kto, whose KL rows pair each row with its batch neighbour's completion) or random." category:"kto"`
	// SyncRefModel turns on TR-DPO's reference update (Gorbatovski et al.,
	// 2024): every RefModelSyncSteps steps ref = alpha*policy +
	// (1-alpha)*ref. Default false.
	SyncRefModel bool `yaml:"sync_ref_model" help:"TR-DPO: mix the policy into the reference every ref_model_sync_steps steps." category:"kto"`
	// RefModelMixupAlpha is TR-DPO's alpha. Default 0.6.
	RefModelMixupAlpha float64 `yaml:"ref_model_mixup_alpha" help:"TR-DPO alpha: ref = alpha*policy + (1-alpha)*ref." category:"kto" range:"[0,1]"`
	// RefModelSyncSteps is TR-DPO's tau. Default 512.
	RefModelSyncSteps int `yaml:"ref_model_sync_steps" help:"TR-DPO tau: optimizer steps between reference updates." category:"kto" range:"[1,inf)"`
}

// FieldHelp is the help of the shared model and data flags where kto says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Policy to start from: a causal LM checkpoint directory (an rl sft output).",
		"dataset_name":       "Unpaired preference data (prompt, completion, boolean label; or messages + label), or preference pairs (chosen, rejected), which are unpaired.",
		"columns":            "Rename columns, source=target (e.g. kto_tag=label).",
		"max_samples":        "Use at most this many training records (before unpairing; 0: all).",
	}
}

// DefaultConfig returns KTOConfig's defaults: beta 0.1, learning_rate 1e-6,
// loss_type kto, desirable_weight and undesirable_weight 1, max_length
// 1024, train_sampling_strategy sequential, ref_model_mixup_alpha 0.6,
// ref_model_sync_steps 512.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "kto-out"
	return Config{
		Args:                  a,
		ModelConfig:           train.DefaultModelConfig(),
		ScriptArguments:       datasets.DefaultScriptArguments(),
		Beta:                  0.1,
		LossType:              "kto",
		DesirableWeight:       1,
		UndesirableWeight:     1,
		MaxLength:             1024,
		DisableDropout:        true,
		TrainSamplingStrategy: Sequential,
		RefModelMixupAlpha:    0.6,
		RefModelSyncSteps:     512,
	}
}

// LossTypes lists the loss_type values KTO knows, sorted.
func LossTypes() []string {
	names := make([]string, 0, len(losses))
	for k := range losses {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// calculateKL reports whether the loss uses the KL estimate z (TRL's
// calculate_KL: every loss type but apo_zero_unpaired).
func (c *Config) calculateKL() bool { return c.LossType != "apo_zero_unpaired" }

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if err := c.Args.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := check.OwnFields(c); err != nil {
		errs = append(errs, err)
	}
	if c.Model == "" {
		bad("model_name_or_path must be set (a causal LM checkpoint, e.g. an rl sft output)")
	}
	for _, err := range []error{c.ModelConfig.Validate(), c.ScriptArguments.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, known := losses[c.LossType]
	if !known {
		bad("loss_type (--loss-type) %q: want one of %s", c.LossType, strings.Join(LossTypes(), ", "))
	}
	if c.TrainSamplingStrategy != Sequential && c.TrainSamplingStrategy != Random {
		bad("train_sampling_strategy (--train-sampling-strategy) %q: want sequential or random (group_by_length is not supported)", c.TrainSamplingStrategy)
	} else if known && c.calculateKL() && c.TrainSamplingStrategy != Sequential {
		// TRL's KTOTrainer raises the same (kto_trainer.py, __init__).
		bad("loss_type %s estimates the KL term from each row's batch neighbours and needs train_sampling_strategy (--train-sampling-strategy) sequential, got %q (or use loss_type apo_zero_unpaired)", c.LossType, c.TrainSamplingStrategy)
	}
	if known && c.calculateKL() && c.PerDeviceTrainBatchSize <= 1 {
		// TRL: "Actual (not effective) batch size must be > 1".
		bad("per_device_train_batch_size (--per-device-train-batch-size) must be > 1 for loss_type %s, got %d: with one row the KL row is the row itself and the KL term equals the implied reward", c.LossType, c.PerDeviceTrainBatchSize)
	}
	if c.DesirableWeight == 0 && c.UndesirableWeight == 0 {
		bad("desirable_weight (--desirable-weight) and undesirable_weight (--undesirable-weight) are both 0: nothing would be learned")
	}
	if c.SyncRefModel && c.PrecomputeRefLogProbs {
		bad("sync_ref_model (--sync-ref-model) needs a live reference model: it cannot be combined with precompute_ref_log_probs (--precompute-ref-log-probs)")
	}
	if c.SyncRefModel && c.UsePEFT {
		bad("sync_ref_model (--sync-ref-model) mixes the policy's weights into the reference; with use_peft the policy's change lives in its adapters: use one or the other (TRL: not yet compatible with PEFT)")
	}
	return errors.Join(errs...)
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "ref-model", Path: c.RefModel}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
}
