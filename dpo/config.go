// Package dpo implements Direct Preference Optimization (Rafailov et al.,
// 2023) and its loss variants, mirroring TRL's DPOTrainer: a policy trained
// from preference pairs against a frozen reference model.
package dpo

import (
	"errors"
	"fmt"
	"github.com/rlsuite/rl/datasets"
	"slices"
	"sort"
	"strings"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's DPOConfig plus the script arguments that say which model
// and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// dpo's own model and data settings.
	RefModel string `yaml:"ref_model" help:"Reference model directory (default: a frozen copy of model_name_or_path)." category:"model"`

	// DPOConfig.

	// Beta is TRL's beta: the deviation from the reference (higher: less);
	// IPO's tau. Default 0.1.
	Beta float64 `yaml:"beta" help:"Deviation from the reference model: higher beta, less deviation (IPO's tau)." category:"dpo" range:"(0,inf)"`
	// LossType lists the losses summed (TRL's loss_type); default [sigmoid].
	LossType []string `yaml:"loss_type" help:"Losses, summed with loss_weights: sigmoid, hinge, ipo, robust, exo_pair, bco_pair, sppo_hard, nca_pair, aot, aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm, sft (RPO: sigmoid,sft)." category:"dpo"`
	// LossWeights weight LossType; empty means 1 each. Default none.
	LossWeights []float64 `yaml:"loss_weights" help:"One weight per loss_type (default 1 each)." category:"dpo"`
	// LabelSmoothing is robust DPO's label-flip probability in [0, 0.5) and
	// EXO's epsilon. Default 0.
	LabelSmoothing float64 `yaml:"label_smoothing" help:"Robust DPO: probability that a label is flipped, in [0, 0.5); exo_pair: epsilon, > 0 (1e-3 recommended); aot, aot_unpaired: label smoothing of their sigmoid loss." category:"dpo" range:"[0,1)"`
	// LdAlpha is LD-DPO's alpha (Length Desensitization, arXiv:2409.06411): the
	// weight of the completion tokens past the shorter completion's length
	// in both rows' log-probs (policy and reference). Default none (the
	// plain sums, as 1).
	LdAlpha *float64 `yaml:"ld_alpha" help:"LD-DPO: weight of the log-probs of the longer completion's tokens past the shorter's length, in [0, 1] (default: none, plain DPO)." category:"dpo" range:"[0,1]"`
	// FDivergenceType is f-DPO's divergence: reverse_kl (DPO), forward_kl,
	// js_divergence, alpha_divergence. Default reverse_kl.
	FDivergenceType string `yaml:"f_divergence_type" help:"f-DPO regulariser: reverse_kl (DPO), forward_kl, js_divergence or alpha_divergence." category:"dpo"`
	// FAlphaDivergenceCoef is the alpha of alpha_divergence. Default 0.5.
	FAlphaDivergenceCoef float64 `yaml:"f_alpha_divergence_coef" help:"alpha of f_divergence_type alpha_divergence." category:"dpo"`
	// UseWeighting weighs each pair's loss by WPO's w(x, y_w) w(x, y_l)
	// (Zhou et al. 2024, arXiv:2406.11827). Default false.
	UseWeighting bool `yaml:"use_weighting" help:"WPO: weigh each pair by the policy's length-normalised (sharpened) probabilities of its two completions." category:"dpo"`
	// DiscopopTau is DiscoPOP's tau. Default 0.05.
	DiscopopTau float64 `yaml:"discopop_tau" help:"DiscoPOP's temperature tau (loss_type discopop)." category:"dpo" range:"(0,inf)"`
	// MaxLength bounds prompt + the longer completion, in tokens. Default 1024.
	MaxLength int `yaml:"max_length" help:"Maximum tokens of prompt + completion; longer pairs are truncated per truncation_mode." category:"dpo" range:"[2,inf)"`
	// DisableDropout turns the model's dropout off during training (TRL's
	// disable_dropout, default true).
	DisableDropout bool `yaml:"disable_dropout" help:"Train without the model's dropout (TRL's default)." category:"dpo"`
	// TruncationMode is keep_start (TRL's current default: cut the
	// completions' ends) or keep_end (cut the prompt's start).
	TruncationMode string `yaml:"truncation_mode" help:"keep_start: cut the end of the completions; keep_end: cut the start of the prompt." category:"dpo"`
	// PrecomputeRefLogProbs computes the reference log-probs of every pair
	// once before training and keeps no reference model. Default false.
	PrecomputeRefLogProbs bool `yaml:"precompute_ref_log_probs" help:"Compute the reference log-probs of all pairs before training; no reference model is kept." category:"dpo"`
	// PrecomputeRefBatchSize is the batch size of that pass (0: the
	// train/eval batch sizes). Default none.
	PrecomputeRefBatchSize int `yaml:"precompute_ref_batch_size" help:"Batch size for precompute_ref_log_probs (0: per_device_train/eval_batch_size)." category:"dpo" range:"[0,inf)"`
	// SyncRefModel turns on TR-DPO (Gorbatovski et al., 2024): every
	// RefModelSyncSteps steps ref = alpha*policy + (1-alpha)*ref. Default false.
	SyncRefModel bool `yaml:"sync_ref_model" help:"TR-DPO: mix the policy into the reference every ref_model_sync_steps steps." category:"dpo"`
	// RefModelMixupAlpha is TR-DPO's alpha. Default 0.6.
	RefModelMixupAlpha float64 `yaml:"ref_model_mixup_alpha" help:"TR-DPO alpha: ref = alpha*policy + (1-alpha)*ref." category:"dpo" range:"[0,1]"`
	// RefModelSyncSteps is TR-DPO's tau. Default 512.
	RefModelSyncSteps int `yaml:"ref_model_sync_steps" help:"TR-DPO tau: optimizer steps between reference updates." category:"dpo" range:"[1,inf)"`
}

// FieldHelp is the help of the shared model and data flags where dpo says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Policy to start from: a causal LM checkpoint directory (an rl sft output).",
		"dataset_name":       "Preference pairs: a file or folder with chosen and rejected (and prompt) columns.",
		"columns":            "Rename columns, source=target (e.g. response_j=chosen,response_k=rejected).",
		"max_samples":        "Use at most this many training pairs (0: all).",
	}
}

// DefaultConfig returns DPOConfig's defaults: beta 0.1, learning_rate 1e-6,
// loss_type [sigmoid], max_length 1024, truncation_mode keep_start,
// ref_model_mixup_alpha 0.6, ref_model_sync_steps 512, f_divergence_type
// reverse_kl, f_alpha_divergence_coef 0.5, discopop_tau 0.05.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "dpo-out"
	return Config{
		Args:                 a,
		ModelConfig:          train.DefaultModelConfig(),
		ScriptArguments:      datasets.DefaultScriptArguments(),
		Beta:                 0.1,
		DisableDropout:       true,
		LossType:             []string{"sigmoid"},
		MaxLength:            1024,
		TruncationMode:       preference.KeepStart,
		RefModelMixupAlpha:   0.6,
		RefModelSyncSteps:    512,
		FDivergenceType:      "reverse_kl",
		FAlphaDivergenceCoef: 0.5,
		DiscopopTau:          0.05,
	}
}

// LossTypes lists the loss_type values DPO knows, sorted.
func LossTypes() []string {
	names := make([]string, 0, len(losses))
	for k := range losses {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

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
	if len(c.LossType) == 0 {
		bad("loss_type must name at least one loss (%s)", strings.Join(LossTypes(), ", "))
	}
	for _, lt := range c.LossType {
		if _, ok := losses[lt]; !ok {
			bad("loss_type %q: want one of %s", lt, strings.Join(LossTypes(), ", "))
		}
	}
	if len(c.LossWeights) > 0 && len(c.LossWeights) != len(c.LossType) {
		bad("loss_weights has %d values for %d loss_type entries", len(c.LossWeights), len(c.LossType))
	}
	if slices.Contains(c.LossType, "robust") && c.LabelSmoothing >= 0.5 {
		bad("label_smoothing must be in [0, 0.5) for the robust loss (its 1/(1-2*label_smoothing) factor), got %g", c.LabelSmoothing)
	}
	if slices.Contains(c.LossType, "exo_pair") && c.LabelSmoothing == 0 {
		bad("label_smoothing must be greater than 0 for the exo_pair loss (log(label_smoothing) is in it); the EXO paper recommends 1e-3 (TRL's DPOTrainer refuses 0 too)")
	}
	if !slices.Contains(FDivergences, c.FDivergenceType) {
		bad("f_divergence_type %q: want one of %s", c.FDivergenceType, strings.Join(FDivergences, ", "))
	}
	if c.UseWeighting && (slices.Contains(c.LossType, "aot") || slices.Contains(c.LossType, "aot_unpaired")) {
		bad("use_weighting is not supported with loss_type aot or aot_unpaired: they sort pairs, which would misalign the per-pair weights (TRL refuses it too)")
	}
	if c.TruncationMode != preference.KeepEnd && c.TruncationMode != preference.KeepStart {
		bad("truncation_mode %q: want keep_end or keep_start", c.TruncationMode)
	}
	if c.SyncRefModel {
		if c.PrecomputeRefLogProbs {
			bad("sync_ref_model needs a live reference model: it cannot be combined with precompute_ref_log_probs")
		}
		if c.UsePEFT {
			bad("sync_ref_model mixes the policy's weights into the reference; with use_peft the policy's change lives in its adapters: use one or the other")
		}
	}
	return errors.Join(errs...)
}

// params returns the loss settings.
func (c *Config) params() Params {
	return Params{Beta: c.Beta, LabelSmoothing: c.LabelSmoothing, FDivergence: c.FDivergenceType, FAlphaCoef: c.FAlphaDivergenceCoef, DiscopopTau: c.DiscopopTau}
}

// weights returns one weight per loss type.
func (c *Config) weights() []float64 {
	if len(c.LossWeights) > 0 {
		return slices.Clone(c.LossWeights)
	}
	w := make([]float64, len(c.LossType))
	for i := range w {
		w[i] = 1
	}
	return w
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "ref-model", Path: c.RefModel}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
}
