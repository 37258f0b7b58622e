package orpo

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/preference"
)

// encodePairs tokenises preference pairs. A pair whose prompt alone fills
// max_length under keep_start has no room for a completion: it is dropped
// and counted; keep_end cuts such prompts from the left instead.
func encodePairs(enc *preference.Encoder, prefs []datasets.Preference, log zerolog.Logger, what string) ([]preference.Pair, error) {
	prog := metrics.NewProgress(log, "tokenizing "+what, len(prefs))
	defer prog.Done()
	out := make([]preference.Pair, 0, len(prefs))
	dropped := 0
	for _, p := range prefs {
		x, err := enc.Encode(p)
		prog.Add(1)
		if err != nil && enc.TruncationMode == preference.KeepStart {
			// The only error of keep_start truncation is a prompt that
			// leaves no room; encoding errors recur without truncation.
			drop := *enc
			drop.TruncationMode = preference.Drop
			if _, err2 := drop.Encode(p); errors.Is(err2, preference.ErrTooLong) {
				dropped++
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("orpo: %s: %w", p.Src, err)
		}
		out = append(out, x)
	}
	if dropped > 0 {
		log.Warn().Int("dropped", dropped).Int("kept", len(out)).Int("max_length", enc.MaxLength).
			Msgf("%s: pairs whose prompt fills max_length dropped (truncation_mode keep_start; keep_end cuts the prompt instead)", what)
	}
	if len(out) == 0 && len(prefs) > 0 {
		return nil, fmt.Errorf("orpo: %s: every pair was dropped: prompts fill max_length %d (raise it or use truncation_mode keep_end)", what, enc.MaxLength)
	}
	return out, nil
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
