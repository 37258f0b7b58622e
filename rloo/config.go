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
	"github.com/rlsuite/rl/shared/generate"
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
	NumGenerations      int     `yaml:"num_generations" help:"Completions sampled per prompt (the group); at least 2." category:"generation" range:"[1,inf)"`
	MaxCompletionLength int     `yaml:"max_completion_length" help:"Tokens generated per completion at most." category:"generation" range:"[1,inf)"`
	GenerationBatchSize *int    `yaml:"generation_batch_size" help:"Completions per generation (default: per_device_train_batch_size * steps_per_generation); exclusive with steps_per_generation." category:"generation" range:"[1,inf)"`
	StepsPerGeneration  *int    `yaml:"steps_per_generation" help:"Micro-batches each generation feeds (default: gradient_accumulation_steps)." category:"generation" range:"[1,inf)"`
	Temperature         float64 `yaml:"temperature" help:"Sampling temperature; log-probs use logits / temperature." category:"generation" range:"(0,inf)"`
	TopP                float64 `yaml:"top_p" help:"Nucleus sampling: keep the smallest set of tokens with this much probability." category:"generation" range:"(0,1]"`
	TopK                int     `yaml:"top_k" help:"Keep only the k most likely tokens (0: all)." category:"generation" range:"[0,inf)"`
	RepetitionPenalty   float64 `yaml:"repetition_penalty" help:"Penalty on tokens already in the sequence (1: none)." category:"generation" range:"(0,inf)"`
	GenerationChunk     int     `yaml:"generation_chunk" help:"Sequences per generate call and per no-grad forward (rl's; 0: the whole generation batch)." category:"generation" range:"[0,inf)"`

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
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path":  "Policy to start from: a causal LM checkpoint (an rl sft output); with beta > 0 a frozen copy is the reference (with use_peft: the policy without its adapters).",
		"dataset_name":        "Prompts: a file or folder with a prompt (or messages) column; other columns go to column rewards (builtin:gsm8k reads answer).",
		"dataset_train_split": "Split with the training prompts.",
		"dataset_test_split":  "Not used yet: rloo does not evaluate.",
		"eval_ratio":          "Not used yet: rloo does not evaluate.",
		"max_samples":         "Use at most this many training prompts (0: all).",
	}
}

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
		Args:                a,
		RewardConfig:        rollout.DefaultRewardConfig(),
		ModelConfig:         train.DefaultModelConfig(),
		ScriptArguments:     datasets.ScriptArguments{TrainSplit: "train"}, // no evaluation: no test split
		ShuffleDataset:      true,
		NumGenerations:      2,
		MaxCompletionLength: 512,
		Temperature:         1.0,
		TopP:                1.0,
		RepetitionPenalty:   1.0,
		Beta:                0.05,
		NumIterations:       1,
		Epsilon:             0.2,
	}
}

// Derived fills generation_batch_size and steps_per_generation as
// RLOOConfig.__post_init__ does (one process).
func (c *Config) Derived() (genBatch, stepsPerGen int, err error) {
	bs := c.PerDeviceTrainBatchSize
	switch {
	case c.GenerationBatchSize == nil && c.StepsPerGeneration == nil:
		stepsPerGen = c.GradientAccumulationSteps
		genBatch = bs * stepsPerGen
	case c.GenerationBatchSize != nil && c.StepsPerGeneration == nil:
		genBatch = *c.GenerationBatchSize
		if bs <= 0 || genBatch%bs != 0 {
			return 0, 0, fmt.Errorf("generation_batch_size (%d) must be divisible by the global batch size (per_device_train_batch_size %d)", genBatch, bs)
		}
		stepsPerGen = genBatch / bs
	case c.GenerationBatchSize == nil && c.StepsPerGeneration != nil:
		stepsPerGen = *c.StepsPerGeneration
		genBatch = bs * stepsPerGen
	default:
		return 0, 0, errors.New("generation_batch_size and steps_per_generation can not be both configured at the same time")
	}
	return genBatch, stepsPerGen, nil
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
	if c.TestSplit != "" || c.EvalRatio > 0 {
		bad("dataset_test_split, eval_ratio: rloo does not evaluate yet (eval_strategy must be no)")
	}
	if err := c.RewardConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RewardClipRange != nil && (len(c.RewardClipRange) != 2 || c.RewardClipRange[0] > c.RewardClipRange[1]) {
		bad("reward_clip_range %v: want two numbers, min <= max (e.g. --reward-clip-range -1,1)", c.RewardClipRange)
	}
	if c.PerDeviceTrainBatchSize >= 1 && c.GradientAccumulationSteps >= 1 {
		if gb, _, err := c.Derived(); err != nil {
			errs = append(errs, err)
		} else if c.NumGenerations >= 1 && gb%c.NumGenerations != 0 {
			bad("generation_batch_size (%d) must be divisible by num_generations (%d): each generation holds whole groups of completions (generation_batch_size defaults to per_device_train_batch_size * steps_per_generation)", gb, c.NumGenerations)
		}
	}
	if c.NumGenerations < 2 {
		bad("num_generations: RLOO requires at least 2 generations per prompt to calculate the advantages; you provided %d", c.NumGenerations)
	}
	if c.EvalStrategy != "no" {
		bad("eval_strategy: rl rloo has no evaluation loop yet; leave it at no")
	}
	if c.LoadBestModelAtEnd {
		bad("load_best_model_at_end is not available for RLOO")
	}
	return errors.Join(errs...)
}

// weights are reward_weights, 1 for each function when unset.
func (c *Config) weights() []float64 { return c.RewardConfig.Weights() }

// options are what rollout.Load loads for the run.
func (c *Config) options(log zerolog.Logger) rollout.Options {
	return rollout.Options{Name: "rloo", ModelConfig: c.ModelConfig, Data: c.ScriptArguments, Seed: c.Seed, Reference: c.Beta != 0, DisableDropout: c.DisableDropout,
		RewardFuncs: c.RewardFuncs, RewardTimeout: c.Timeout(),
		Gen: generate.Config{MaxNewTokens: c.MaxCompletionLength, Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP,
			RepetitionPenalty: c.RepetitionPenalty},
		Chunk: c.GenerationChunk, Log: log}
}

// inputs are the paths the run reads, by flag (builtin:NAME is no path).
func (c *Config) inputs() []train.Input {
	return append([]train.Input{{Flag: "model", Path: c.Model}, {Flag: "dataset", Path: c.Dataset}}, c.RewardConfig.Inputs("reward-funcs")...)
}
