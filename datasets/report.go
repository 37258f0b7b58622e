package datasets

import (
	"slices"

	"github.com/rs/zerolog"
)

// WarnSkipped logs, as warnings naming the split, what was dropped from d
// with SkipBadRecords: the records that could not be read (d.Skipped, when
// read is set) and those its last typed view dropped (d.Checked), each with
// the first reasons; and preference pairs whose chosen equals rejected. It
// returns the number of records dropped. Every trainer calls it so that
// skipped rows are never silent.
func WarnSkipped(log zerolog.Logger, d *Dataset, read bool) int {
	n := 0
	if read && d.Skipped > 0 {
		n += d.Skipped
		log.Warn().Str("split", d.Name).Int("skipped", d.Skipped).Strs("reasons", d.SkipReasons).Msg("unreadable records skipped (skip_bad_records)")
	}
	if r := d.Checked; r.Skipped > 0 {
		n += r.Skipped
		log.Warn().Str("split", d.Name).Str("check", r.View).Int("skipped", r.Skipped).Int("kept", r.Kept).Strs("reasons", r.Reasons).Msg("invalid records skipped (skip_bad_records)")
	}
	if r := d.Checked; r.IdenticalPairs > 0 {
		log.Warn().Str("split", d.Name).Int("pairs", r.IdenticalPairs).Msg("pairs with chosen identical to rejected (kept, as TRL does; they teach nothing)")
	}
	return n
}

// WarnLoaded is WarnSkipped for the unreadable records of the splits
// LoadTrainEval returns; an eval split held out of the training file shares
// its count and is not logged twice. It returns the number skipped.
func WarnLoaded(log zerolog.Logger, train, eval *Dataset) int {
	n := 0
	for _, d := range []*Dataset{train, eval} {
		if d == nil || d.Skipped == 0 || d == eval && train != nil && d.Skipped == train.Skipped && slices.Equal(d.SkipReasons, train.SkipReasons) {
			continue
		}
		n += d.Skipped
		log.Warn().Str("split", d.Name).Int("skipped", d.Skipped).Strs("reasons", d.SkipReasons).Msg("unreadable records skipped (skip_bad_records)")
	}
	return n
}
