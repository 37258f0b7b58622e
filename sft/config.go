// Package sft implements supervised fine-tuning, mirroring TRL's SFTTrainer:
// language-modelling, prompt-completion and conversational data, loss on
// completions or assistant turns only, optional packing. Training a base
// model from scratch is SFT on plain text from a freshly initialised model.
package sft

import (
	"errors"
	"fmt"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Config is TRL's SFTConfig plus the script arguments that say which model
// and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	// Model and data.
	Model          string   `yaml:"model_name_or_path" alias:"model" help:"Checkpoint directory to start from (Hugging Face layout)." category:"model"`
	Init           string   `yaml:"init" help:"Train from scratch: a preset (tiny, tiny-llama, gpt2-small) or a config.json; needs --tokenizer." category:"model"`
	Tokenizer      string   `yaml:"tokenizer_name_or_path" alias:"tokenizer" help:"Tokenizer directory (default: the model's)." category:"model"`
	DType          string   `yaml:"dtype" help:"Parameter and saved dtype: float32 or bfloat16; unset: train in float32, save in the source checkpoint's dtype." category:"model"`
	Dataset        string   `yaml:"dataset_name" alias:"dataset" help:"Dataset file or folder (jsonl, json, csv, tsv, txt, parquet, save_to_disk)." category:"data"`
	TrainSplit     string   `yaml:"dataset_train_split" help:"Split to train on." category:"data"`
	TestSplit      string   `yaml:"dataset_test_split" help:"Split to evaluate on; when the data lacks it, eval_ratio of the training split is held out." category:"data"`
	EvalRatio      float64  `yaml:"eval_ratio" help:"Fraction of the training split held out for evaluation when there is no test split (0: none)." category:"data" range:"[0,1)"`
	DatasetFormat  string   `yaml:"dataset_format" help:"File format override: jsonl, json, csv, tsv, text, parquet, arrow." category:"data"`
	Columns        []string `yaml:"columns" help:"Rename columns, source=target (e.g. question=prompt,answer=completion)." category:"data"`
	SkipBadRecords bool     `yaml:"skip_bad_records" help:"Skip and count bad records instead of stopping at the first." category:"data"`
	MaxSamples     int      `yaml:"max_samples" help:"Use at most this many training examples (0: all)." category:"data" range:"[0,inf)"`
	NoCache        bool     `yaml:"no_cache" help:"Do not read or write the tokenisation cache." category:"data"`

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
}

// DefaultConfig returns SFTConfig's defaults: learning_rate 2e-5,
// max_length 1024, packing false, completion_only_loss on.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.LearningRate = 2e-5
	a.OutputDir = "sft-out"
	return Config{
		Args:             a,
		TrainSplit:       "train",
		TestSplit:        "test",
		DatasetTextField: "text",
		MaxLength:        1024,
		TruncationMode:   "keep_start",
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
	if c.Dataset == "" {
		errs = append(errs, errors.New("dataset_name must be set"))
	}
	if c.TruncationMode != "keep_start" && c.TruncationMode != "keep_end" {
		errs = append(errs, fmt.Errorf("truncation_mode %q: want keep_start or keep_end", c.TruncationMode))
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

func (c *Config) completionOnly() bool { return c.CompletionOnlyLoss == nil || *c.CompletionOnlyLoss }
