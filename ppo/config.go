// Package ppo implements Proximal Policy Optimization for RLHF, mirroring
// TRL's PPOTrainer (the PPOv2 design in trl/experimental/ppo): the policy
// and a value model trained by one optimizer, rewards from reward functions
// shared with GRPO and RLOO (reward models, built-in scorers, external
// programs; shared/rollout) minus a per-token KL penalty to a frozen
// reference, GAE advantages, clipped policy and value losses. Unlike TRL it
// resumes from checkpoints.
package ppo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's PPOConfig plus the paths of the chain's stages. Its
// logging_steps and save_steps count updates (rollouts), as TRL does.
type Config struct {
	train.Args `yaml:",inline"`

	SFTModel string `yaml:"sft_model_path" alias:"model" help:"Policy to start from (an rl sft output); the reference is a frozen copy." category:"model"`
	// Reward is TRL's reward_model_path: one reward function (a reward
	// model directory, builtin:NAME or cmd:PROGRAM), exclusive with
	// reward_funcs.
	Reward     string `yaml:"reward_model_path" alias:"reward" help:"Reward model (an rl reward output), builtin:NAME for a programmatic scorer, or cmd:PROGRAM ARGS; exclusive with reward_funcs (which takes several)." category:"model"`
	ValueModel string `yaml:"value_model_path" help:"Value model to start from (default: the first reward model that reads the policy's tokens, a decoder sharing its tokenizer; else the policy with a new score head)." category:"model"`
	DType      string `yaml:"dtype" help:"Parameter and saved dtype: float32 or bfloat16; unset: train in float32, save in the source checkpoint's dtype." category:"model"`
	// PEFTConfig: with use_peft the policy trains LoRA adapters and the
	// reference is the policy with its adapters disabled (no copy), as
	// TRL's PPOTrainer does with a peft_config; the value model trains in
	// full.
	train.PEFTConfig `yaml:",inline"`

	// RewardConfig: reward_funcs (several functions, summed with
	// reward_weights; GRPO's and RLOO's) and reward_timeout.
	rollout.RewardConfig `yaml:",inline"`

	datasets.ScriptArguments `yaml:",inline"`

	MaxPromptLength int `yaml:"max_prompt_length" help:"Prompts longer than this many tokens are cut from the left." category:"data" range:"[0,inf)"`

	NumMiniBatches               int      `yaml:"num_mini_batches" help:"Mini-batches the rollout batch is split into per PPO epoch (must divide it)." category:"ppo" range:"[1,inf)"`
	TotalEpisodes                int      `yaml:"total_episodes" help:"Episodes (generated responses) in all; 0: num_train_epochs passes over the prompts." category:"ppo" range:"[0,inf)"`
	LocalRolloutForwardBatchSize int      `yaml:"local_rollout_forward_batch_size" help:"Sequences per no-grad forward (and generation) chunk in the rollout." category:"ppo" range:"[1,inf)"`
	NumSampleGenerations         int      `yaml:"num_sample_generations" help:"How many times to write sample generations during training." category:"ppo" range:"[0,inf)"`
	ResponseLength               int      `yaml:"response_length" help:"Tokens generated per response at most." category:"ppo" range:"[1,inf)"`
	StopToken                    string   `yaml:"stop_token" help:"eos: responses end at the tokenizer's eos; unset (TRL's default): every response is response_length tokens." category:"ppo"`
	StopTokenID                  *int     `yaml:"stop_token_id" help:"A token id that ends a response (instead of stop_token)." category:"ppo" range:"[0,inf)"`
	Temperature                  float64  `yaml:"temperature" help:"Sampling temperature of rollouts; log-probs use logits/(temperature+1e-7)." category:"ppo" range:"(0,inf)"`
	MissingEOSPenalty            *float64 `yaml:"missing_eos_penalty" help:"Subtracted from the score of responses without an eos." category:"ppo" range:"[0,inf)"`
	NumPPOEpochs                 int      `yaml:"num_ppo_epochs" help:"Passes over each rollout batch." category:"ppo" range:"[1,inf)"`
	WhitenRewards                bool     `yaml:"whiten_rewards" help:"Whiten the per-token rewards." category:"ppo"`
	KLCoef                       float64  `yaml:"kl_coef" help:"Weight of the per-token KL penalty to the reference." category:"ppo" range:"[0,inf)"`
	KLEstimator                  string   `yaml:"kl_estimator" help:"k1 (log ratio) or k3 ((r-1) - log r) KL estimator." category:"ppo"`
	ClipRange                    float64  `yaml:"cliprange" help:"Policy ratio clip range." category:"ppo" range:"(0,inf)"`
	VFCoef                       float64  `yaml:"vf_coef" help:"Weight of the value loss." category:"ppo" range:"[0,inf)"`
	ClipRangeValue               float64  `yaml:"cliprange_value" help:"Value prediction clip range." category:"ppo" range:"(0,inf)"`
	Gamma                        float64  `yaml:"gamma" help:"Discount factor." category:"ppo" range:"[0,1]"`
	Lam                          float64  `yaml:"lam" help:"GAE lambda." category:"ppo" range:"[0,1]"`
}

// FieldHelp is the help of the shared data flags where ppo says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"dataset_name":        "Prompts: a file or folder with a prompt (or messages) column.",
		"dataset_train_split": "Split with the training prompts.",
		"dataset_test_split":  "Split with prompts for sample generations; when the data lacks it, eval_ratio of the training prompts is held out, else the training prompts are used.",
		"columns":             "Rename columns, source=target (e.g. question=prompt).",
		"max_samples":         "Use at most this many training prompts (0: all).",
	}
}

// DefaultConfig returns PPOConfig's defaults (trl/experimental/ppo/
// ppo_config.py): learning_rate 3e-6 and TrainingArguments' own
// per_device_train_batch_size 8 and num_train_epochs 3. max_grad_norm is 0
// (no clipping): TRL's PPO loop never clips, whatever max_grad_norm says;
// rl clips when it is set.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 3e-6
	a.OutputDir = "ppo-out"
	a.MaxGradNorm = 0
	a.SaveSteps = 500
	return Config{
		Args:                         a,
		ScriptArguments:              datasets.DefaultScriptArguments(),
		RewardConfig:                 rollout.DefaultRewardConfig(),
		PEFTConfig:                   train.DefaultPEFTConfig(),
		MaxPromptLength:              512,
		NumMiniBatches:               1,
		LocalRolloutForwardBatchSize: 64,
		NumSampleGenerations:         10,
		ResponseLength:               53,
		Temperature:                  0.7,
		NumPPOEpochs:                 4,
		KLCoef:                       0.05,
		KLEstimator:                  "k1",
		ClipRange:                    0.2,
		VFCoef:                       0.1,
		ClipRangeValue:               0.2,
		Gamma:                        1.0,
		Lam:                          0.95,
	}
}

// BatchSize is the rollout batch, TRL's local_batch_size since
// huggingface/trl#2531: per_device_train_batch_size *
// gradient_accumulation_steps. Each PPO epoch is one optimizer step over
// it, in gradient_accumulation_steps micro-batches of
// per_device_train_batch_size (accelerate syncs every
// gradient_accumulation_steps micro-batches, so TRL's num_mini_batches
// only groups them).
func (c *Config) BatchSize() int {
	return c.PerDeviceTrainBatchSize * c.GradientAccumulationSteps
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if err := c.Args.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := check.OwnFields(c); err != nil {
		errs = append(errs, err)
	}
	if c.SFTModel == "" {
		bad("sft_model_path must be set")
	}
	switch rc, _ := c.rewards(); {
	case c.Reward != "" && len(c.RewardFuncs) > 0:
		bad("reward_model_path (%s) and reward_funcs (%s) are both set: give every reward function in reward_funcs (e.g. --reward-funcs %s,%s), or one in reward_model_path", c.Reward, strings.Join(c.RewardFuncs, ","), c.Reward, c.RewardFuncs[0])
	case len(rc.RewardFuncs) == 0:
		bad("reward_model_path or reward_funcs must be set (a reward model directory, builtin:NAME or cmd:PROGRAM)")
	default:
		if err := rc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.ScriptArguments.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.PEFTConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NumMiniBatches >= 1 && c.BatchSize()%c.NumMiniBatches != 0 {
		bad("per_device_train_batch_size * gradient_accumulation_steps (%d) must be a multiple of num_mini_batches (%d)", c.BatchSize(), c.NumMiniBatches)
	} else if c.NumMiniBatches >= 1 && c.WhitenRewards && c.BatchSize()/c.NumMiniBatches < 8 {
		bad("whiten_rewards needs mini-batches of at least 8 (per_device_train_batch_size * gradient_accumulation_steps / num_mini_batches is %d), as TRL asserts", c.BatchSize()/c.NumMiniBatches)
	}
	if c.KLEstimator != "k1" && c.KLEstimator != "k3" {
		bad("kl_estimator %q: want k1 or k3", c.KLEstimator)
	}
	if c.StopToken != "" && c.StopToken != "eos" {
		bad("stop_token %q: want eos (or use stop_token_id)", c.StopToken)
	}
	if c.StopToken != "" && c.StopTokenID != nil {
		bad("stop_token and stop_token_id are mutually exclusive")
	}
	if c.EvalStrategy != "no" {
		bad("eval_strategy: PPO has no eval loss; sample generations are written every num_sample_generations instead")
	}
	if c.LoadBestModelAtEnd {
		bad("load_best_model_at_end is not available for PPO")
	}
	return errors.Join(errs...)
}

// rewards is the run's reward functions: reward_funcs, or reward_model_path
// as the only one; flag is the option that named them (for errors).
func (c *Config) rewards() (rc rollout.RewardConfig, flag string) {
	rc = c.RewardConfig
	if c.Reward != "" && len(c.RewardFuncs) == 0 {
		rc.RewardFuncs = []string{c.Reward}
		return rc, "reward_model_path"
	}
	return rc, "reward_funcs"
}

// inputs are the paths the run reads, by flag (a builtin:NAME reward is no path).
func (c *Config) inputs() []train.Input {
	return append([]train.Input{{Flag: "model", Path: c.SFTModel}, {Flag: "reward", Path: c.Reward}, {Flag: "value-model-path", Path: c.ValueModel}, {Flag: "dataset", Path: c.Dataset}},
		c.RewardConfig.Inputs("reward-funcs")...)
}
