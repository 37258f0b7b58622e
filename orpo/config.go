// Package orpo implements Odds Ratio Preference Optimization (Hong et al.,
// 2024), mirroring TRL's ORPOTrainer: supervised fine-tuning on the chosen
// completions plus an odds-ratio penalty on the rejected ones, with no
// reference model.
package orpo

import (
	"errors"
	"fmt"
	"github.com/rlsuite/rl/datasets"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's ORPOConfig plus the script arguments that say which
// model and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// ORPOConfig.

	// Beta is TRL's beta, the paper's lambda: the weight of the odds-ratio
	// term. Default 0.1.
	Beta float64 `yaml:"beta" help:"Weight of the odds-ratio loss (the paper's lambda)." category:"orpo" range:"[0,inf)"`
	// MaxLength bounds each row (prompt + completion), in tokens; longer
	// completions are cut at the end, and a pair whose prompt alone fills
	// max_length is dropped. Default 1024. ORPOConfig has no
	// truncation_mode since huggingface/trl#5378.
	MaxLength int `yaml:"max_length" help:"Maximum tokens of prompt + completion; longer completions are cut at the end." category:"orpo" range:"[2,inf)"`
	// DisableDropout turns the model's dropout off during training (TRL's
	// disable_dropout, default true).
	DisableDropout bool `yaml:"disable_dropout" help:"Train without the model's dropout (TRL's default)." category:"orpo"`
}

// FieldHelp is the help of the shared model and data flags where orpo says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Model to start from: a causal LM checkpoint directory (a base model or an rl sft output).",
		"dataset_name":       "Preference pairs: a file or folder with chosen and rejected (and prompt) columns.",
		"columns":            "Rename columns, source=target (e.g. response_j=chosen,response_k=rejected).",
		"max_samples":        "Use at most this many training pairs (0: all).",
	}
}

// DefaultConfig returns ORPOConfig's defaults: beta 0.1, learning_rate
// 1e-6, max_length 1024.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "orpo-out"
	return Config{
		Args:            a,
		ModelConfig:     train.DefaultModelConfig(),
		ScriptArguments: datasets.DefaultScriptArguments(),
		Beta:            0.1,
		DisableDropout:  true,
		MaxLength:       1024,
	}
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
	return errors.Join(errs...)
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
}
