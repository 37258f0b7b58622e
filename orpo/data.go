package orpo

import (
	"errors"
	"fmt"
	"strings"

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

// loadSplits loads the train split and an eval split: the named test split
// when the data has one, else eval_ratio of the training split (seeded).
func loadSplits(cfg *Config) (trainSet, evalSet *datasets.Dataset, err error) {
	opts := datasets.LoadOptions{Format: cfg.DatasetFormat, SkipBadRecords: cfg.SkipBadRecords}
	if len(cfg.Columns) > 0 {
		opts.Columns = map[string]string{}
		for _, c := range cfg.Columns {
			src, dst, ok := strings.Cut(c, "=")
			if !ok {
				return nil, nil, fmt.Errorf("orpo: columns entry %q: want source=target", c)
			}
			opts.Columns[src] = dst
		}
	}
	dd, err := datasets.Load(cfg.Dataset, opts)
	if err != nil {
		return nil, nil, err
	}
	if trainSet, err = dd.Split(cfg.TrainSplit); err != nil {
		return nil, nil, err
	}
	if cfg.TestSplit != "" {
		if s, err := dd.Split(cfg.TestSplit); err == nil {
			return trainSet, s, nil
		}
	}
	if cfg.EvalRatio > 0 {
		trainSet, evalSet = trainSet.TrainTestSplit(cfg.EvalRatio, cfg.Seed)
	}
	return trainSet, evalSet, nil
}
