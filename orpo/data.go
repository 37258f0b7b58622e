package orpo

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tokenizer"
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

// newEncoder tokenises pairs as TRL's ORPOTrainer (preference.StyleORPO).
func newEncoder(cfg *Config, tok *tokenizer.Tokenizer) *preference.Encoder {
	return &preference.Encoder{Tok: tok, Style: preference.StyleORPO, MaxLength: cfg.MaxLength, EOS: tok.EOS()}
}

// Preview returns the first n training pairs exactly as Run tokenises them
// (rl data show), with the tokenizer, without loading the model.
func Preview(cfg Config, n int, log zerolog.Logger) ([]preference.Pair, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	d, _, err := cfg.ScriptArguments.Load(cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	pairs, err := newEncoder(&cfg, tok).Preview(d, n, log)
	if err != nil {
		return nil, nil, fmt.Errorf("orpo: %w", err)
	}
	return pairs, tok, nil
}

