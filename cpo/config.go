// Package cpo implements Contrastive Preference Optimization (Xu et al.,
// 2024) and its reference-free relatives SimPO and AlphaPO, mirroring TRL's
// CPOTrainer: a preference loss on the policy's own log-probs plus a
// behaviour-cloning NLL term on the chosen completions, with no reference
// model.
package cpo

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's CPOConfig (trl/experimental/cpo/cpo_config.py) plus the
// script arguments that say which model and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// CPOConfig.

	// Beta is TRL's beta: the temperature of the preference loss (IPO's
	// tau). Default 0.1. TRL does not check it; rl wants it > 0 (ipo and
	// simpo divide by it).
	Beta float64 `yaml:"beta" help:"Temperature of the preference loss (IPO's tau); > 0." category:"cpo" range:"(0,inf)"`
	// LabelSmoothing is the probability that a label is flipped, for the
	// sigmoid and simpo losses (conservative DPO). Default 0. hinge and ipo
	// ignore it, with a warning, as TRL does.
	LabelSmoothing float64 `yaml:"label_smoothing" help:"Label smoothing of the sigmoid and simpo losses (hinge and ipo ignore it)." category:"cpo" range:"[0,1)"`
	// LossType is one of sigmoid, hinge, ipo, simpo, alphapo. Default
	// sigmoid. alphapo is TRL's shorthand for simpo with cpo_alpha 0.
	LossType string `yaml:"loss_type" help:"Preference loss: sigmoid (CPO), hinge, ipo, simpo, alphapo (simpo with cpo_alpha 0; set alpha)." category:"cpo"`
	// CPOAlpha weighs the NLL of the chosen completions (the paper's BC
	// regulariser). Default 1; 0 drops it (pure SimPO).
	CPOAlpha float64 `yaml:"cpo_alpha" help:"Weight of the NLL of the chosen completions (0: none, pure SimPO)." category:"cpo" range:"[0,inf)"`
	// SimPOGamma is SimPO's target reward margin gamma. Default 0.5.
	SimPOGamma float64 `yaml:"simpo_gamma" help:"SimPO's target reward margin (loss_type simpo/alphapo)." category:"cpo"`
	// Alpha shapes the reward as AlphaPO does: r = (1 - p^-alpha)/alpha
	// with p the (summed or averaged) sequence probability; 0 keeps
	// r = log p. Default 0. Applies to every loss type.
	Alpha float64 `yaml:"alpha" help:"AlphaPO reward shape: r = (1 - p^-alpha)/alpha (0: r = log p); any loss type." category:"cpo"`
	// MaxLength bounds each row (prompt + completion), in tokens; longer
	// completions are cut at the end, and a pair whose prompt alone fills
	// max_length is dropped. Default 1024.
	MaxLength int `yaml:"max_length" help:"Maximum tokens of prompt + completion; longer completions are cut at the end." category:"cpo" range:"[2,inf)"`
	// MaxCompletionLength cuts each completion (eos included) to this many
	// tokens. Default none. TRL reads it for encoder-decoder models only;
	// rl applies it to causal LMs (see docs/trl-parity.md).
	MaxCompletionLength *int `yaml:"max_completion_length" help:"Cut each completion to this many tokens (default: no limit beyond max_length)." category:"cpo" range:"[1,inf)"`
	// DisableDropout turns the model's dropout off during training (TRL's
	// disable_dropout, default true).
	DisableDropout bool `yaml:"disable_dropout" help:"Train without the model's dropout (TRL's default)." category:"cpo"`
}

// FieldHelp is the help of the shared model and data flags where cpo says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Model to start from: a causal LM checkpoint directory (a base model or an rl sft output).",
		"dataset_name":       "Preference pairs: a file or folder with chosen and rejected (and prompt) columns.",
		"columns":            "Rename columns, source=target (e.g. response_j=chosen,response_k=rejected).",
		"max_samples":        "Use at most this many training pairs (0: all).",
	}
}

// DefaultConfig returns CPOConfig's defaults: beta 0.1, loss_type sigmoid,
// cpo_alpha 1, simpo_gamma 0.5, alpha 0, label_smoothing 0, max_length
// 1024, learning_rate 1e-6.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "cpo-out"
	return Config{
		Args:            a,
		ModelConfig:     train.DefaultModelConfig(),
		ScriptArguments: datasets.DefaultScriptArguments(),
		Beta:            0.1,
		LossType:        "sigmoid",
		CPOAlpha:        1,
		SimPOGamma:      0.5,
		MaxLength:       1024,
		DisableDropout:  true,
	}
}

// LossTypes lists the loss_type values CPO knows, sorted.
func LossTypes() []string {
	names := []string{"alphapo"}
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
		bad("model_name_or_path must be set (a causal LM checkpoint)")
	}
	for _, err := range []error{c.ModelConfig.Validate(), c.ScriptArguments.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if _, ok := losses[c.LossType]; !ok && c.LossType != "alphapo" {
		hint := ""
		if c.LossType == "kto_pair" {
			hint = " (kto_pair was removed from TRL's CPOTrainer: use a KTO trainer)"
		}
		bad("loss_type %q: want one of %s%s", c.LossType, strings.Join(LossTypes(), ", "), hint)
	}
	return errors.Join(errs...)
}

// resolve applies CPOConfig.__post_init__: loss_type alphapo is simpo with
// cpo_alpha 0.
func (c *Config) resolve() {
	if c.LossType == "alphapo" {
		c.LossType, c.CPOAlpha = "simpo", 0
	}
}

// params returns the loss settings of a resolved config.
func (c *Config) params() Params {
	return Params{Type: c.LossType, Beta: c.Beta, LabelSmoothing: c.LabelSmoothing, CPOAlpha: c.CPOAlpha, Gamma: c.SimPOGamma, Alpha: c.Alpha}
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
}
