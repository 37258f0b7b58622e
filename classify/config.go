// Package classify fine-tunes a transformer for sequence classification,
// as transformers' Trainer does with a GPT2ForSequenceClassification or
// LlamaForSequenceClassification (a score head read at the last non-pad
// token) or a BertForSequenceClassification, DistilBert… or Roberta…
// (the family's head on [CLS], with the tokenizer's pair template and
// token type ids): cross-entropy over num_labels classes, accuracy, F1 and
// Matthews correlation on the eval set.
package classify

import (
	"errors"
	"fmt"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// Config is Hugging Face TrainingArguments plus the script arguments of
// transformers' run_glue.py example that say which model and data to use.
type Config struct {
	train.Args `yaml:",inline"`

	train.ModelConfig        `yaml:",inline"`
	datasets.ScriptArguments `yaml:",inline"`

	// classify's own model and data settings.
	Init           string   `yaml:"init" help:"Train from scratch: a preset (tiny, tiny-llama, tiny-bert, tiny-distilbert, tiny-roberta, tiny-deberta, gpt2-small) or a config.json; needs --tokenizer." category:"model"`
	EvalDataset    string   `yaml:"eval_dataset_name" alias:"eval-dataset,eval_dataset" help:"A separate file or folder to evaluate on (its dataset_test_split, or its only split); default: a split of dataset_name." category:"data"`
	NoHeader       bool     `yaml:"no_header" help:"CSV/TSV files have no header row (name the columns with column_names)." category:"data"`
	ColumnNames    []string `yaml:"column_names" help:"CSV/TSV column names, e.g. source,label,mark,sentence for GLUE CoLA's raw files." category:"data"`
	TextColumn     string   `yaml:"text_column" help:"Column holding the text (default: text or sentence, or the first of a known pair such as sentence1/sentence2)." category:"data"`
	PairColumn     string   `yaml:"text_pair_column" help:"Column holding the second text of a sentence pair (default: the known pair's second column)." category:"data"`
	LabelColumn    string   `yaml:"label_column" help:"Column holding the label (default: label)." category:"data"`
	LabelNames     []string `yaml:"label_names" help:"Class names for integer labels 0..k-1, saved as id2label (e.g. unacceptable,acceptable for CoLA); string labels name themselves." category:"data"`
	MaxLength      int      `yaml:"max_length" help:"Truncate inputs to this many tokens (pairs: the longer text first, as truncation=True does)." category:"classify" range:"[1,inf)"`
	ProblemType    string   `yaml:"problem_type" help:"Loss and metrics: single_label_classification (class ids, cross-entropy), multi_label_classification (lists of label names or 0/1 vectors, BCE) or regression (float labels, num_labels 1, MSE); default: the checkpoint's, else inferred as transformers does (num_labels 1: regression; list labels: multi-label; non-integer numbers: regression; else single-label)." category:"classify"`
	MaxEvalSamples int      `yaml:"max_eval_samples" help:"Evaluate on at most this many examples (0: all)." category:"data" range:"[0,inf)"`
}

// FieldHelp is the help of the shared model and data flags where classify says more.
func (c *Config) FieldHelp() map[string]string {
	return map[string]string{
		"model_name_or_path": "Checkpoint directory to start from (Hugging Face layout; a causal LM gets a new score head).",
		"dataset_name":       "Dataset file or folder (jsonl, json, csv, tsv, parquet, save_to_disk) with a text (or sentence pair) and a label column.",
		"dataset_test_split": "Split to evaluate on (default: validation, else test); when the data has none, eval_ratio of the training split is held out.",
		"eval_ratio":         "Fraction of the training split held out for evaluation when there is no eval split (0: none).",
	}
}

// DefaultConfig returns the Trainer's defaults (learning_rate 5e-5,
// num_train_epochs 3, batch size 8, linear schedule) with max_length 128,
// as run_glue.py's max_seq_length.
func DefaultConfig() Config {
	a := train.DefaultArgs()
	a.OutputDir = "classify-out"
	return Config{
		Args:        a,
		ModelConfig: train.DefaultModelConfig(),
		// dataset_test_split unset: validation, else test
		ScriptArguments: datasets.ScriptArguments{TrainSplit: "train"},
		MaxLength:       128,
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
	switch c.ProblemType {
	case "", model.SingleLabel, model.MultiLabel, model.Regression:
	default:
		errs = append(errs, fmt.Errorf("problem_type (--problem-type) %q: want %s, %s or %s", c.ProblemType, model.SingleLabel, model.MultiLabel, model.Regression))
	}
	if c.PairColumn != "" && c.TextColumn == "" {
		errs = append(errs, errors.New("text_pair_column needs text_column"))
	}
	return errors.Join(errs...)
}

// inputs are the paths the run reads, by flag.
func (c *Config) inputs() []train.Input {
	return []train.Input{{Flag: "model", Path: c.Model}, {Flag: "init", Path: c.Init}, {Flag: "tokenizer", Path: c.Tokenizer}, {Flag: "dataset", Path: c.Dataset}, {Flag: "eval-dataset", Path: c.EvalDataset}}
}

// modelID names the starting model in the run's identity.
func modelID(model, init string) string {
	if model != "" {
		return model
	}
	return "init:" + init
}
