// Package grpo implements Group Relative Policy Optimization (Shao et al.,
// 2024, arXiv:2402.03300), mirroring TRL's GRPOTrainer: several sampled
// completions per prompt, rewards from built-in functions or reward
// models, advantages relative to the prompt's group, a clipped surrogate
// loss with TRL's loss types (grpo, dr_grpo, dapo, bnpo) and an optional
// KL penalty to a frozen reference. It resumes from checkpoints.
package grpo

import (
	"errors"
	"fmt"
	"github.com/rlsuite/rl/datasets"
	"slices"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's GRPOConfig plus the script arguments (model, data).
// logging_steps and save_steps count optimizer steps, as TRL.
type Config struct {
	train.Args               `yaml:",inline"`
	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// RewardConfig: reward_funcs, reward_weights, reward_timeout (shared
	// with rloo and ppo).
	rollout.RewardConfig `yaml:",inline"`
	ShuffleDataset       bool `yaml:"shuffle_dataset" help:"Shuffle the prompts (TRL's RepeatSampler with the seed)." category:"data"`

	// Generation.
	rollout.GenerationConfig `yaml:",inline"`

	// Loss.
	Beta                     float64  `yaml:"beta" help:"Weight of the k3 KL to the reference (0: no reference model is loaded)." category:"grpo" range:"[0,inf)"`
	NumIterations            int      `yaml:"num_iterations" help:"Passes over each generation batch (mu in the paper)." category:"grpo" range:"[1,inf)"`
	Epsilon                  float64  `yaml:"epsilon" help:"Lower clip range of the ratio (and the upper one unless epsilon_high)." category:"grpo" range:"[0,inf)"`
	EpsilonHigh              *float64 `yaml:"epsilon_high" help:"Upper clip range (default: epsilon; DAPO uses 0.28)." category:"grpo" range:"[0,inf)"`
	Delta                    *float64 `yaml:"delta" help:"Upper bound of the unclipped ratio (two-sided clipping); must exceed 1 + epsilon_high." category:"grpo" range:"(0,inf)"`
	ImportanceSamplingLevel  string   `yaml:"importance_sampling_level" help:"token (GRPO) or sequence (GSPO: one ratio per completion)." category:"grpo"`
	ScaleRewards             string   `yaml:"scale_rewards" help:"Divide advantages by the std of the group, of the batch, or none." category:"grpo"`
	LossType                 string   `yaml:"loss_type" help:"grpo, dr_grpo, dapo or bnpo: how token losses are averaged." category:"grpo"`
	MaskTruncatedCompletions bool     `yaml:"mask_truncated_completions" help:"Leave completions cut at max_completion_length out of the loss." category:"grpo"`
	DisableDropout           bool     `yaml:"disable_dropout" help:"Train without the model's dropout." category:"grpo"`
	LogCompletions           bool     `yaml:"log_completions" help:"Log a few prompts, completions, rewards and advantages of each logged step, and write them to completions/step-N.jsonl." category:"logging"`
}

// FieldHelp is the help of the shared model and data flags where grpo says more.
func (c *Config) FieldHelp() map[string]string { return rollout.FieldHelp("grpo") }

// DefaultConfig returns GRPOConfig's defaults (trl/trainer/grpo_config.py):
// learning_rate 1e-6, num_generations 8, max_completion_length 512,
// temperature 1, top_p 1, top_k 0, repetition_penalty 1, beta 0,
// num_iterations 1, epsilon 0.2, importance_sampling_level token,
// scale_rewards group, loss_type dapo, disable_dropout false,
// shuffle_dataset true; TrainingArguments' own batch size (8) and epochs (3).
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "grpo-out"
	return Config{
		Args:                    a,
		RewardConfig:            rollout.DefaultRewardConfig(),
		ModelConfig:             train.DefaultModelConfig(),
		ScriptArguments:         datasets.ScriptArguments{TrainSplit: "train"}, // no evaluation: no test split
		GenerationConfig:        rollout.DefaultGenerationConfig(8),
		ShuffleDataset:          true,
		NumIterations:           1,
		Epsilon:                 0.2,
		ImportanceSamplingLevel: "token",
		ScaleRewards:            "group",
		LossType:                "dapo",
	}
}

// LossTypes are the loss_type values rl implements.
var LossTypes = []string{"grpo", "dr_grpo", "dapo", "bnpo"}

// Derived fills generation_batch_size and steps_per_generation as
// GRPOConfig.__post_init__ does in a world of world processes (rollout.Derive).
func (c *Config) Derived(world int) (genBatch, stepsPerGen int, err error) {
	return c.GenerationConfig.Derived(c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, world)
}

// EpsHigh is epsilon_high, epsilon when unset.
func (c *Config) EpsHigh() float64 {
	if c.EpsilonHigh != nil {
		return *c.EpsilonHigh
	}
	return c.Epsilon
}

// Validate reports every problem at once, with GRPOConfig's checks.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	errs = append(errs, rollout.CheckRun("grpo", &c.Args, &c.ModelConfig, &c.ScriptArguments)...)
	if err := check.OwnFields(c); err != nil {
		errs = append(errs, err)
	}
	if err := c.RewardConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.GenerationConfig.Check("GRPO", c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, dist.Current().Size())...)
	if !slices.Contains(LossTypes, c.LossType) {
		bad("loss_type %q: want one of grpo, dr_grpo, dapo, bnpo (TRL's cispo, sapo, vespo, luspo are not implemented)", c.LossType)
	}
	if c.ImportanceSamplingLevel != "token" && c.ImportanceSamplingLevel != "sequence" {
		bad("importance_sampling_level %q: want token or sequence", c.ImportanceSamplingLevel)
	}
	if c.ScaleRewards != "group" && c.ScaleRewards != "batch" && c.ScaleRewards != "none" {
		bad("scale_rewards %q: want group, batch or none", c.ScaleRewards)
	}
	if c.Delta != nil && *c.Delta <= 1+c.EpsHigh() {
		bad("delta (%g) must be greater than 1 + epsilon_high (%g)", *c.Delta, 1+c.EpsHigh())
	}
	return errors.Join(errs...)
}

// weights are reward_weights, 1 for each function when unset.
func (c *Config) weights() []float64 { return c.RewardConfig.Weights() }

// options are what rollout.Load loads for the run.
func (c *Config) options(log zerolog.Logger) rollout.Options {
	return rollout.Options{Name: "grpo", ModelConfig: c.ModelConfig, Data: c.ScriptArguments, Seed: c.Seed, Reference: c.Beta != 0, DisableDropout: c.DisableDropout,
		RewardFuncs: c.RewardFuncs, RewardTimeout: c.Timeout(),
		Gen:   c.Sampling(),
		Chunk: c.GenerationChunk, Log: log}
}

// inputs are the paths the run reads, by flag (builtin:NAME is no path).
func (c *Config) inputs() []train.Input {
	return append([]train.Input{{Flag: "model", Path: c.Model}, {Flag: "dataset", Path: c.Dataset}}, c.RewardConfig.Inputs("reward-funcs")...)
}
