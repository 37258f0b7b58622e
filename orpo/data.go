package orpo

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/preference"
)

// encodePairs tokenises preference pairs (see preference.Encoder.EncodeAll):
// pairs that do not fit max_length under the truncation mode are dropped
// and counted.
func encodePairs(enc *preference.Encoder, prefs []datasets.Preference, log zerolog.Logger, what string) ([]preference.Pair, error) {
	out, _, err := enc.EncodeAll(prefs, log, what)
	if err == nil && len(out) == 0 && len(prefs) > 0 {
		err = fmt.Errorf("%s: %s: every pair was dropped: prompts fill max_length %d (raise max_length)", "orpo", what, enc.MaxLength)
	}
	return out, err
}

// loadSplits loads the train split and an eval split (see datasets.LoadTrainEval).
func loadSplits(cfg *Config) (trainSet, evalSet *datasets.Dataset, err error) {
	cols, err := datasets.ParseColumns(cfg.Columns)
	if err != nil {
		return nil, nil, err
	}
	opts := datasets.LoadOptions{Format: cfg.DatasetFormat, SkipBadRecords: cfg.SkipBadRecords, Columns: cols}
	return datasets.LoadTrainEval(cfg.Dataset, cfg.TrainSplit, cfg.TestSplit, cfg.EvalRatio, cfg.Seed, opts)
}
