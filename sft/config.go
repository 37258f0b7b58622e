// Package sft implements supervised fine-tuning, mirroring TRL's SFTTrainer:
// language-modelling, prompt-completion and conversational data, loss on
// completions or assistant turns only, optional packing. Training a base
// model from scratch is SFT on plain text from a freshly initialised model.
package sft

import (
	"errors"
	"fmt"
	"github.com/rlsuite/rl/datasets"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's SFTConfig plus the script arguments that say which model
// and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// sft's own model and data settings.
	Init    string `yaml:"init" help:"Train from scratch: a preset (tiny, tiny-llama, gpt2-small) or a config.json; needs --tokenizer." category:"model"`
	NoCache bool   `yaml:"no_cache" help:"Do not read or write the tokenisation cache." category:"data"`

	// SFTConfig.
	DatasetTextField string `yaml:"dataset_text_field" help:"Column holding the text of language-modelling data." category:"sft"`
	MaxLength        int    `yaml:"max_length" help:"Truncate (or pack) sequences to this many tokens." category:"sft" range:"[2,inf)"`
	// TruncationMode is SFTConfig's: keep_start (default) keeps the first
	// max_length tokens, keep_end the last.
	TruncationMode     string `yaml:"truncation_mode" help:"keep_start: keep the first max_length tokens; keep_end: the last." category:"sft"`
	Packing            bool   `yaml:"packing" help:"Pack examples into max_length rows (no attention across examples)." category:"sft"`
	CompletionOnlyLoss *bool  `yaml:"completion_only_loss" help:"Loss on the completion only for prompt-completion data (default true)." category:"sft"`
	AssistantOnlyLoss  bool   `yaml:"assistant_only_loss" help:"Loss on assistant turns only for conversational data." category:"sft"`
	EOSToken           string `yaml:"eos_token" help:"Token appended to each example (default: the tokenizer's eos)." category:"sft"`

	// Evaluation by generation, as LLaMA-Factory's SFT workflow:
	// Seq2SeqTrainingArguments' predict_with_generate and TrainingArguments'
	// do_predict, with rl generate's settings and defaults (greedy, 64 new
	// tokens; LLaMA-Factory samples by default: do_sample true, temperature
	// 0.95, top_p 0.7, top_k 50, max_new_tokens 1024).

	// PredictWithGenerate: each evaluation also generates a completion for
	// every eval prompt and logs eval_rouge-1, eval_rouge-2, eval_rouge-l
	// and eval_bleu-4 (shared/textmetrics); default false.
	PredictWithGenerate bool `yaml:"predict_with_generate" help:"At each evaluation, generate a completion for every eval prompt and log eval_rouge-1, eval_rouge-2, eval_rouge-l and eval_bleu-4 (LLaMA-Factory's metrics)." category:"generation"`
	// DoPredict: after training, generate for the test split
	// (dataset_test_split, else eval_ratio held out), write
	// generated_predictions.jsonl and predict_results.json, and log the
	// predict_ metrics; needs predict_with_generate. Default false.
	DoPredict bool `yaml:"do_predict" help:"After training, generate for the test split (dataset_test_split, else eval_ratio's held-out part), write generated_predictions.jsonl ({prompt, predict, label}) and predict_results.json; needs predict_with_generate." category:"generation"`
	// The generation settings (rl generate's flags; generate.Config).
	MaxNewTokens      int     `yaml:"max_new_tokens" help:"Tokens to generate at most per prompt (predict_with_generate)." category:"generation" range:"[1,inf)"`
	DoSample          bool    `yaml:"do_sample" help:"Sample instead of greedy decoding (predict_with_generate)." category:"generation"`
	Temperature       float64 `yaml:"temperature" help:"Sampling temperature (predict_with_generate)." category:"generation" range:"(0,inf)"`
	TopK              int     `yaml:"top_k" help:"Keep the k most likely tokens when sampling, 0: all (predict_with_generate)." category:"generation" range:"[0,inf)"`
	TopP              float64 `yaml:"top_p" help:"Nucleus sampling: keep the smallest set with this probability (predict_with_generate)." category:"generation" range:"(0,1]"`
	RepetitionPenalty float64 `yaml:"repetition_penalty" help:"Divide the logits of tokens already present by this (1: none; predict_with_generate)." category:"generation" range:"(0,inf)"`
	// LossType is SFTConfig's loss_type: chunked_nll (default) computes the
	// LM head and cross-entropy on the target tokens only, 256 at a time,
	// so the (B, T, V) float32 logits never exist; nll is the same loss
	// from the whole logits at once.
	LossType string `yaml:"loss_type" help:"chunked_nll: LM head and cross-entropy in chunks of target tokens (less memory); nll: from the whole logits." category:"sft"`
}

// FieldHelp is the help of the shared model and data flags where sft says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"dataset_name": "Dataset file or folder (jsonl, json, csv, tsv, txt, parquet, save_to_disk).",
	}
}

// DefaultConfig returns SFTConfig's defaults: learning_rate 2e-5,
// max_length 1024, packing false, completion_only_loss on, loss_type
// chunked_nll.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 2e-5
	a.OutputDir = "sft-out"
	return Config{
		Args:             a,
		ModelConfig:      train.DefaultModelConfig(),
		ScriptArguments:  datasets.DefaultScriptArguments(),
		DatasetTextField: "text",
		MaxLength:        1024,
		TruncationMode:   "keep_start",
		// rl generate's defaults (generate.DefaultConfig)
		MaxNewTokens:      64,
		Temperature:       1,
		TopP:              1,
		RepetitionPenalty: 1,
		LossType:          "chunked_nll",
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
		errs = append(errs, errors.New("set model_name_or_path (a checkpoint) or init (a preset, with tokenizer_name_or_path)"))
	}
	if c.Model != "" && c.Init != "" {
		errs = append(errs, errors.New("set only one of model_name_or_path and init"))
	}
	for _, err := range []error{c.ModelConfig.Validate(), c.ScriptArguments.Validate()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.DoPredict && !c.PredictWithGenerate {
		errs = append(errs, errors.New("do_predict generates: set predict_with_generate too"))
	}
	if c.TruncationMode != "keep_start" && c.TruncationMode != "keep_end" {
		errs = append(errs, fmt.Errorf("truncation_mode %q: want keep_start or keep_end", c.TruncationMode))
	}
	if c.LossType != "chunked_nll" && c.LossType != "nll" {
		errs = append(errs, fmt.Errorf("loss_type %q: want chunked_nll or nll (TRL's dft is not implemented)", c.LossType))
	}
	return errors.Join(errs...)
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	in := []train.Input{{Flag: "model", Path: c.Model}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}}
	if c.Init != "" {
		in = append(in, train.Input{Flag: "init", Path: c.Init}) // a config.json; a preset name is no path
	}
	return in
}

// modelID names the starting model in the run's identity.
func modelID(model, init string) string {
	if model != "" {
		return model
	}
	return "init:" + init
}

// genConfig is the generation settings of predict_with_generate.
func (c *Config) genConfig() generate.Config {
	g := generate.DefaultConfig()
	g.MaxNewTokens, g.DoSample, g.Temperature, g.TopK, g.TopP = c.MaxNewTokens, c.DoSample, c.Temperature, c.TopK, c.TopP
	g.RepetitionPenalty = c.RepetitionPenalty
	g.Seed = uint64(c.Seed)
	return g
}

func (c *Config) completionOnly() bool { return c.CompletionOnlyLoss == nil || *c.CompletionOnlyLoss }
