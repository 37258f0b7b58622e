package datasets

import (
	"fmt"
	"strings"
)

// ScriptArguments is TRL's ScriptArguments (trl/scripts/utils.py): which
// dataset a trainer reads and how, the same fields and flags in every
// trainer. Embed it with `yaml:",inline"`; DefaultScriptArguments gives
// TRL's defaults.
type ScriptArguments struct {
	// Dataset is dataset_name: a file or a folder (jsonl, json, csv, tsv,
	// txt, parquet, arrow, save_to_disk), or a Hub dataset id
	// org/name[:config] read through its Parquet conversion (shared/hub).
	Dataset string `yaml:"dataset_name" alias:"dataset" help:"Dataset file or folder (jsonl, json, csv, tsv, txt, parquet, arrow, save_to_disk), or a Hub dataset org/name[:config] (its Parquet conversion, cached in the Hugging Face cache)." category:"data"`
	// DatasetConfig is dataset_config: the config of a Hub dataset (the
	// same as dataset_name org/name:config); "": the default config.
	DatasetConfig string `yaml:"dataset_config" help:"Config of a Hub dataset (the same as --dataset org/name:config; default: the dataset's default config)." category:"data"`
	// TrainSplit is dataset_train_split (default train).
	TrainSplit string `yaml:"dataset_train_split" help:"Split to train on." category:"data"`
	// TestSplit is dataset_test_split (default test); when the data lacks
	// it, EvalRatio of the training split is held out.
	TestSplit string `yaml:"dataset_test_split" help:"Split to evaluate on; when the data lacks it, eval_ratio of the training split is held out." category:"data"`
	// EvalRatio holds out that fraction of the training split (seeded) when
	// there is no test split; 0: none. rl's addition.
	EvalRatio float64 `yaml:"eval_ratio" help:"Fraction of the training split held out for evaluation when there is no test split (0: none)." category:"data" range:"[0,1)"`
	// DatasetFormat overrides the format the file name implies.
	DatasetFormat string `yaml:"dataset_format" help:"File format override: jsonl, json, csv, tsv, text, parquet, arrow." category:"data"`
	// Columns renames columns, source=target.
	Columns []string `yaml:"columns" help:"Rename columns, source=target (e.g. question=prompt,answer=completion)." category:"data"`
	// SkipBadRecords skips and counts bad records instead of stopping.
	SkipBadRecords bool `yaml:"skip_bad_records" help:"Skip and count bad records instead of stopping at the first." category:"data"`
	// MaxSamples keeps the first this-many training examples; 0: all.
	MaxSamples int `yaml:"max_samples" help:"Use at most this many training examples (0: all)." category:"data" range:"[0,inf)"`
}

// DefaultScriptArguments returns TRL's defaults: dataset_train_split
// train, dataset_test_split test.
func DefaultScriptArguments() ScriptArguments {
	return ScriptArguments{TrainSplit: "train", TestSplit: "test"}
}

// Validate reports what is missing.
func (s *ScriptArguments) Validate() error {
	if s.Dataset == "" {
		return fmt.Errorf("dataset_name must be set (--dataset: a file or folder)")
	}
	if _, err := ParseColumns(s.Columns); err != nil {
		return err
	}
	if _, err := s.source(); err != nil {
		return err
	}
	return nil
}

// source is the path or Hub id to load: dataset_name with dataset_config
// appended as :config.
func (s *ScriptArguments) source() (string, error) {
	if s.DatasetConfig == "" {
		return s.Dataset, nil
	}
	if strings.Contains(s.Dataset, ":") {
		return "", fmt.Errorf("dataset_config %q and dataset_name %q both name a config: give one", s.DatasetConfig, s.Dataset)
	}
	p := s.Dataset + ":" + s.DatasetConfig
	if _, _, ok := hubDatasetID(p); !ok || !notExist(s.Dataset) {
		return "", fmt.Errorf("dataset_config %q: only a Hub dataset (org/name) has configs, and %s is not one", s.DatasetConfig, s.Dataset)
	}
	return p, nil
}

// LoadOptions are the reader settings: format, bad-record policy, renames.
func (s *ScriptArguments) LoadOptions() (LoadOptions, error) {
	cols, err := ParseColumns(s.Columns)
	if err != nil {
		return LoadOptions{}, err
	}
	return LoadOptions{Format: s.DatasetFormat, SkipBadRecords: s.SkipBadRecords, Columns: cols}, nil
}

// Load returns the training split (its first MaxSamples examples when set)
// and the evaluation split (LoadTrainEval's: the test split, else EvalRatio
// held out with seed, else nil).
func (s *ScriptArguments) Load(seed int64) (train, eval *Dataset, err error) {
	opts, err := s.LoadOptions()
	if err != nil {
		return nil, nil, err
	}
	src, err := s.source()
	if err != nil {
		return nil, nil, err
	}
	if train, eval, err = LoadTrainEval(src, s.TrainSplit, s.TestSplit, s.EvalRatio, seed, opts); err != nil {
		return nil, nil, err
	}
	return s.Cap(train), eval, nil
}

// Cap returns the first MaxSamples examples of d (all when MaxSamples is 0).
func (s *ScriptArguments) Cap(d *Dataset) *Dataset {
	if s.MaxSamples <= 0 || d.Len() <= s.MaxSamples {
		return d
	}
	idx := make([]int, s.MaxSamples)
	for i := range idx {
		idx[i] = i
	}
	return d.Select(idx)
}
