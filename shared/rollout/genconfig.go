package rollout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/train"
)

// GenerationConfig is the generation part of TRL's GRPOConfig and
// RLOOConfig (the same names, meanings and defaults in both; embed it
// with `yaml:",inline"`).
type GenerationConfig struct {
	NumGenerations      int     `yaml:"num_generations" help:"Completions sampled per prompt (the group); at least 2." category:"generation" range:"[1,inf)"`
	MaxCompletionLength int     `yaml:"max_completion_length" help:"Tokens generated per completion at most." category:"generation" range:"[1,inf)"`
	GenerationBatchSize *int    `yaml:"generation_batch_size" help:"Completions per generation, the world's (default: per_device_train_batch_size * processes * steps_per_generation); exclusive with steps_per_generation." category:"generation" range:"[1,inf)"`
	StepsPerGeneration  *int    `yaml:"steps_per_generation" help:"Micro-batches each generation feeds (default: gradient_accumulation_steps)." category:"generation" range:"[1,inf)"`
	Temperature         float64 `yaml:"temperature" help:"Sampling temperature; log-probs use logits / temperature." category:"generation" range:"(0,inf)"`
	TopP                float64 `yaml:"top_p" help:"Nucleus sampling: keep the smallest set of tokens with this much probability." category:"generation" range:"(0,1]"`
	TopK                int     `yaml:"top_k" help:"Keep only the k most likely tokens (0: all)." category:"generation" range:"[0,inf)"`
	RepetitionPenalty   float64 `yaml:"repetition_penalty" help:"Penalty on tokens already in the sequence (1: none)." category:"generation" range:"(0,inf)"`
	GenerationChunk     int     `yaml:"generation_chunk" help:"Sequences per generate call and per no-grad forward (rl's; 0: the whole generation batch)." category:"generation" range:"[0,inf)"`
}

// DefaultGenerationConfig is TRL's defaults with numGenerations
// completions per prompt (GRPO 8, RLOO 2): max_completion_length 512,
// temperature 1, top_p 1, top_k 0, repetition_penalty 1.
func DefaultGenerationConfig(numGenerations int) GenerationConfig {
	return GenerationConfig{NumGenerations: numGenerations, MaxCompletionLength: 512, Temperature: 1, TopP: 1, RepetitionPenalty: 1}
}

// Derived is generation_batch_size and steps_per_generation in a world
// of world processes (Derive).
func (g *GenerationConfig) Derived(perDevice, gas, world int) (genBatch, stepsPerGen int, err error) {
	return Derive(perDevice, gas, world, g.GenerationBatchSize, g.StepsPerGeneration)
}

// Check returns the generation settings' problems, as TRL's
// __post_init__ checks them; trainer ("GRPO") names the trainer.
func (g *GenerationConfig) Check(trainer string, perDevice, gas, world int) []error {
	var errs []error
	if err := check.Fields(g); err != nil {
		errs = append(errs, err)
	}
	if perDevice >= 1 && gas >= 1 {
		if gb, _, err := g.Derived(perDevice, gas, world); err != nil {
			errs = append(errs, err)
		} else if g.NumGenerations >= 1 && gb%g.NumGenerations != 0 {
			errs = append(errs, fmt.Errorf("generation_batch_size (%d) must be divisible by num_generations (%d): each generation holds whole groups of completions (generation_batch_size defaults to per_device_train_batch_size * processes * steps_per_generation)", gb, g.NumGenerations))
		}
	}
	if g.NumGenerations < 2 {
		errs = append(errs, fmt.Errorf("num_generations: %s requires at least 2 generations per prompt to calculate the advantages; you provided %d", trainer, g.NumGenerations))
	}
	return errs
}

// Sampling is the sampler's settings.
func (g *GenerationConfig) Sampling() generate.Config {
	return generate.Config{MaxNewTokens: g.MaxCompletionLength, Temperature: g.Temperature, TopK: g.TopK, TopP: g.TopP,
		RepetitionPenalty: g.RepetitionPenalty}
}

// CheckRun returns the problems of the training, model and data settings
// that GRPO's and RLOO's configs check alike; name is the command
// ("grpo"). They train without evaluation (no test split, eval_strategy
// no, no load_best_model_at_end).
func CheckRun(name string, a *train.Args, m *train.ModelConfig, d *datasets.ScriptArguments) []error {
	var errs []error
	for _, err := range []error{a.Validate(), m.Validate(), d.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if m.Model == "" {
		errs = append(errs, errors.New("model_name_or_path must be set (a causal LM checkpoint)"))
	}
	if d.TestSplit != "" || d.EvalRatio > 0 {
		errs = append(errs, fmt.Errorf("dataset_test_split, eval_ratio: %s does not evaluate yet (eval_strategy must be no)", name))
	}
	if a.EvalStrategy != "no" {
		errs = append(errs, fmt.Errorf("eval_strategy: rl %s has no evaluation loop yet; leave it at no", name))
	}
	if a.LoadBestModelAtEnd {
		errs = append(errs, fmt.Errorf("load_best_model_at_end is not available for %s", strings.ToUpper(name)))
	}
	return errs
}

// FieldHelp is the help of the shared model and data flags where GRPO and
// RLOO (name) say more.
func FieldHelp(name string) map[string]string {
	return map[string]string{
		"model_name_or_path":  "Policy to start from: a causal LM checkpoint (an rl sft output); with beta > 0 a frozen copy is the reference (with use_peft: the policy without its adapters).",
		"dataset_name":        "Prompts: a file or folder with a prompt (or messages) column; other columns go to column rewards (builtin:gsm8k reads answer).",
		"dataset_train_split": "Split with the training prompts.",
		"dataset_test_split":  "Not used yet: " + name + " does not evaluate.",
		"eval_ratio":          "Not used yet: " + name + " does not evaluate.",
		"max_samples":         "Use at most this many training prompts (0: all).",
	}
}
