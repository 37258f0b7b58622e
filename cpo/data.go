package cpo

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// encodePairs tokenises preference pairs (see preference.Encoder.EncodeAll)
// and cuts completions to max_completion_length: pairs whose prompt fills
// max_length are dropped and counted.
func encodePairs(cfg *Config, enc *preference.Encoder, prefs []datasets.Preference, log zerolog.Logger, what string) ([]preference.Pair, error) {
	out, _, err := enc.EncodeAll(prefs, log, what)
	if err == nil && len(out) == 0 && len(prefs) > 0 {
		err = fmt.Errorf("cpo: %s: every pair was dropped: prompts fill max_length %d (raise max_length)", what, enc.MaxLength)
	}
	if err != nil {
		return nil, err
	}
	if n := cfg.MaxCompletionLength; n != nil {
		for i := range out {
			p := &out[i]
			p.Chosen = p.Chosen[:min(len(p.Chosen), p.ChosenStart+*n)]
			p.Rejected = p.Rejected[:min(len(p.Rejected), p.RejectedStart+*n)]
		}
	}
	return out, nil
}

// newEncoder tokenises pairs as TRL's CPOTrainer, whose tokenize_row and
// build_tokenized_answer are ORPOTrainer's line for line
// (preference.StyleORPO).
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
	if d.Len() > n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		d = d.Select(idx)
	}
	prefs, err := d.Preferences()
	if err != nil {
		return nil, nil, fmt.Errorf("cpo: %w", err)
	}
	pairs, err := encodePairs(&cfg, newEncoder(&cfg, tok), prefs, log, d.Name)
	if err != nil {
		return nil, nil, err
	}
	return pairs, tok, nil
}
