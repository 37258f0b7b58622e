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
	"github.com/rlsuite/rl/shared/generate"
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
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path":  "Policy to start from: a causal LM checkpoint (an rl sft output); with beta > 0 a frozen copy is the reference (with use_peft: the policy without its adapters).",
		"dataset_name":        "Prompts: a file or folder with a prompt (or messages) column; other columns go to column rewards (builtin:gsm8k reads answer).",
		"dataset_train_split": "Split with the training prompts.",
		"dataset_test_split":  "Not used yet: grpo does not evaluate.",
		"eval_ratio":          "Not used yet: grpo does not evaluate.",
		"max_samples":         "Use at most this many training prompts (0: all).",
	}
}

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
		ShuffleDataset:          true,
		NumGenerations:          8,
		MaxCompletionLength:     512,
		Temperature:             1.0,
		TopP:                    1.0,
		RepetitionPenalty:       1.0,
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
// GRPOConfig.__post_init__ does (one process).
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

// Validate reports every problem at once, with GRPOConfig's checks.
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
		bad("dataset_test_split, eval_ratio: grpo does not evaluate yet (eval_strategy must be no)")
	}
	if err := c.RewardConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PerDeviceTrainBatchSize >= 1 && c.GradientAccumulationSteps >= 1 {
		if gb, _, err := c.Derived(); err != nil {
			errs = append(errs, err)
		} else if c.NumGenerations >= 1 && gb%c.NumGenerations != 0 {
			bad("generation_batch_size (%d) must be divisible by num_generations (%d): each generation holds whole groups of completions (generation_batch_size defaults to per_device_train_batch_size * steps_per_generation)", gb, c.NumGenerations)
		}
	}
	if c.NumGenerations < 2 {
		bad("num_generations: GRPO requires at least 2 generations per prompt to calculate the advantages; you provided %d", c.NumGenerations)
	}
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
	if c.EvalStrategy != "no" {
		bad("eval_strategy: rl grpo has no evaluation loop yet; leave it at no")
	}
	if c.LoadBestModelAtEnd {
		bad("load_best_model_at_end is not available for GRPO")
	}
	return errors.Join(errs...)
}

// weights are reward_weights, 1 for each function when unset.
func (c *Config) weights() []float64 { return c.RewardConfig.Weights() }

// options are what rollout.Load loads for the run.
func (c *Config) options(log zerolog.Logger) rollout.Options {
	return rollout.Options{Name: "grpo", ModelConfig: c.ModelConfig, Data: c.ScriptArguments, Seed: c.Seed, Reference: c.Beta != 0, DisableDropout: c.DisableDropout,
		RewardFuncs: c.RewardFuncs, RewardTimeout: c.Timeout(),
		Gen: generate.Config{MaxNewTokens: c.MaxCompletionLength, Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP,
			RepetitionPenalty: c.RepetitionPenalty},
		Chunk: c.GenerationChunk, Log: log}
}

// inputs are the paths the run reads, by flag (builtin:NAME is no path).
func (c *Config) inputs() []train.Input {
	return append([]train.Input{{Flag: "model", Path: c.Model}, {Flag: "dataset", Path: c.Dataset}}, c.RewardConfig.Inputs("reward-funcs")...)
}
