// Package reward trains outcome reward models on preference pairs with the
// Bradley-Terry loss, mirroring TRL's RewardTrainer and RewardConfig.
package reward

import (
	"errors"

	"github.com/rlsuite/rl/datasets"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's RewardConfig plus the script arguments that say which
// model and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// reward's own model and data settings.
	Init string `yaml:"init" help:"Start from a randomly initialised model instead: a preset (tiny, tiny-llama, gpt2-small) or a config.json; needs --tokenizer." category:"model"`

	// RewardConfig.
	MaxLength int `yaml:"max_length" help:"Pairs whose prompt+chosen or prompt+rejected is longer than this many tokens are dropped (and counted)." category:"reward" range:"[2,inf)"`
	// DisableDropout turns the model's dropout off during training (TRL's
	// disable_dropout, default true).
	DisableDropout           bool     `yaml:"disable_dropout" help:"Train without the model's dropout (TRL's default)." category:"reward"`
	CenterRewardsCoefficient *float64 `yaml:"center_rewards_coefficient" help:"Weight of mean((r_chosen + r_rejected)^2), pushing rewards towards mean zero (Eisenstein et al. 2023 recommend 0.01; default none)." category:"reward" range:"[0,inf)"`
	EOSToken                 string   `yaml:"eos_token" help:"Token appended to each completion (default: the tokenizer's eos)." category:"reward"`
	PadToken                 string   `yaml:"pad_token" help:"Padding token, written as the model's pad_token_id (default: the tokenizer's pad, else its eos)." category:"reward"`
}

// FieldHelp is the help of the shared model and data flags where reward says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Checkpoint to start from: an SFT or other causal-LM checkpoint (its lm_head is dropped and a score head added) or a reward model.",
		"dataset_name":       "Preference data file or folder (chosen, rejected, optional prompt and margin columns).",
		"columns":            "Rename columns, source=target (e.g. response_j=chosen,response_k=rejected,question=prompt).",
		"max_samples":        "Use at most this many training pairs (0: all).",
	}
}

// DefaultConfig returns RewardConfig's defaults: learning_rate 1e-4,
// max_length 1024, center_rewards_coefficient none, with
// TrainingArguments' defaults for the rest (logging_steps 10).
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-4
	a.OutputDir = "reward-out"
	return Config{
		Args:            a,
		ModelConfig:     train.DefaultModelConfig(),
		ScriptArguments: datasets.DefaultScriptArguments(),
		MaxLength:       1024,
		DisableDropout:  true,
	}
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Args.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := check.OwnFields(c); err != nil {
		errs = append(errs, err)
	}
	if c.Model == "" && c.Init == "" {
		errs = append(errs, errors.New("set model_name_or_path (an SFT, causal-LM or reward checkpoint) or init (a preset, with tokenizer_name_or_path)"))
	}
	if c.Model != "" && c.Init != "" {
		errs = append(errs, errors.New("set only one of model_name_or_path and init"))
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
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "init", Path: c.Init}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
}

// modelID names the starting model in the run's identity.
func modelID(model, init string) string {
	if model != "" {
		return model
	}
	return "init:" + init
}
