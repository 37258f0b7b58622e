// Package rloo implements REINFORCE Leave-One-Out (Ahmadian et al., 2024,
// arXiv:2402.14740), mirroring TRL's RLOOTrainer: several sampled
// completions per prompt, each rewarded against the mean reward of its
// siblings, a sequence-level clipped ratio, and a KL penalty to a frozen
// reference subtracted from the reward. It resumes from checkpoints.
package rloo

import (
	"errors"
	"fmt"
	"github.com/rlsuite/rl/datasets"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's RLOOConfig plus the script arguments (model, data).
type Config struct {
	train.Args               `yaml:",inline"`
	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// RewardConfig: reward_funcs, reward_weights, reward_timeout (shared
	// with grpo and ppo).
	rollout.RewardConfig `yaml:",inline"`
	ShuffleDataset       bool `yaml:"shuffle_dataset" help:"Shuffle the prompts (TRL's RepeatSampler with the seed)." category:"data"`

	// Generation.
	rollout.GenerationConfig `yaml:",inline"`

	// Loss.
	Beta                     float64   `yaml:"beta" help:"Weight of the KL to the reference, subtracted from the reward (0: no reference model is loaded)." category:"rloo" range:"[0,inf)"`
	NumIterations            int       `yaml:"num_iterations" help:"Passes over each generation batch." category:"rloo" range:"[1,inf)"`
	Epsilon                  float64   `yaml:"epsilon" help:"Lower clip range of the sequence ratio (and the upper one unless epsilon_high)." category:"rloo" range:"[0,inf)"`
	EpsilonHigh              *float64  `yaml:"epsilon_high" help:"Upper clip range (default: epsilon)." category:"rloo" range:"[0,inf)"`
	NormalizeAdvantages      bool      `yaml:"normalize_advantages" help:"Normalise the advantages to zero mean and unit std over the batch." category:"rloo"`
	RewardClipRange          []float64 `yaml:"reward_clip_range" help:"Clip the summed reward to [min,max] (two numbers; unset: no clipping)." category:"rloo"`
	MaskTruncatedCompletions bool      `yaml:"mask_truncated_completions" help:"Leave completions cut at max_completion_length out of the loss." category:"rloo"`
	DisableDropout           bool      `yaml:"disable_dropout" help:"Train without the model's dropout." category:"rloo"`
	LogCompletions           bool      `yaml:"log_completions" help:"Log a few prompts, completions, rewards and advantages of each logged step, and write them to completions/step-N.jsonl." category:"logging"`
}

// FieldHelp is the help of the shared model and data flags where rloo says more.
func (c *Config) FieldHelp() map[string]string { return rollout.FieldHelp("rloo") }

// DefaultConfig returns RLOOConfig's defaults (trl/trainer/rloo_config.py):
// learning_rate 1e-6, num_generations 2, max_completion_length 512, beta
// 0.05, num_iterations 1, epsilon 0.2, normalize_advantages false,
// temperature 1, top_p 1, top_k 0, repetition_penalty 1, disable_dropout
// false, shuffle_dataset true.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 1e-6
	a.OutputDir = "rloo-out"
	return Config{
		Args:             a,
		RewardConfig:     rollout.DefaultRewardConfig(),
		ModelConfig:      train.DefaultModelConfig(),
		ScriptArguments:  datasets.ScriptArguments{TrainSplit: "train"}, // no evaluation: no test split
		GenerationConfig: rollout.DefaultGenerationConfig(2),
		ShuffleDataset:   true,
		Beta:             0.05,
		NumIterations:    1,
		Epsilon:          0.2,
	}
}

// Derived fills generation_batch_size and steps_per_generation as
// RLOOConfig.__post_init__ does in a world of world processes (rollout.Derive).
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

// Validate reports every problem at once, with RLOOConfig's checks.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	errs = append(errs, rollout.CheckRun("rloo", &c.Args, &c.ModelConfig, &c.ScriptArguments)...)
	if err := check.OwnFields(c); err != nil {
		errs = append(errs, err)
	}
	if err := c.RewardConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RewardClipRange != nil && (len(c.RewardClipRange) != 2 || c.RewardClipRange[0] > c.RewardClipRange[1]) {
		bad("reward_clip_range %v: want two numbers, min <= max (e.g. --reward-clip-range -1,1)", c.RewardClipRange)
	}
	errs = append(errs, c.GenerationConfig.Check("RLOO", c.PerDeviceTrainBatchSize, c.GradientAccumulationSteps, dist.Current().Size())...)
	return errors.Join(errs...)
}

// weights are reward_weights, 1 for each function when unset.
func (c *Config) weights() []float64 { return c.RewardConfig.Weights() }

// options are what rollout.Load loads for the run.
func (c *Config) options(log zerolog.Logger) rollout.Options {
	return rollout.Options{Name: "rloo", ModelConfig: c.ModelConfig, Data: c.ScriptArguments, Seed: c.Seed, Reference: c.Beta != 0, DisableDropout: c.DisableDropout,
		RewardFuncs: c.RewardFuncs, RewardTimeout: c.Timeout(),
		Gen:   c.Sampling(),
		Chunk: c.GenerationChunk, Log: log}
}

// inputs are the paths the run reads, by flag (builtin:NAME is no path).
func (c *Config) inputs() []train.Input {
	return append([]train.Input{{Flag: "model", Path: c.Model}, {Flag: "dataset", Path: c.Dataset}}, c.RewardConfig.Inputs("reward-funcs")...)
}
