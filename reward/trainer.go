package reward

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/train"
)

// Result is what Run returns.
type Result struct {
	*train.Result
	// TrainPairs and EvalPairs are the pairs trained and evaluated on.
	TrainPairs, EvalPairs int
	// Dropped counts pairs longer than max_length (train and eval), as TRL
	// filters them; Skipped counts bad records skipped with skip_bad_records.
	Dropped, Skipped int
}

// Run trains a reward model according to cfg and writes it, with its
// tokenizer, to cfg.OutputDir as a Hugging Face …ForSequenceClassification
// checkpoint with num_labels 1.
func Run(ctx context.Context, cfg Config, log zerolog.Logger, rawConfig []byte) (res *Result, err error) {
	defer tensor.Recover(&err, "reward")
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	if err := train.CheckInputs(cfg.OutputDir, cfg.inputs()); err != nil {
		return nil, err
	}
	m, tok, err := loadModel(&cfg)
	if err != nil {
		return nil, err
	}
	defer m.Free()
	log.Info().Str("model_type", m.Config.ModelType).Int64("parameters", m.NumParams()).Int64("trainable", m.NumTrainable()).Int("vocab", m.Config.VocabSize).Msg("model")
	if cfg.MaxLength > m.Config.MaxPositions {
		log.Warn().Int("max_length", cfg.MaxLength).Int("max_positions", m.Config.MaxPositions).Msg("max_length exceeds the model's positions; using the latter")
		cfg.MaxLength = m.Config.MaxPositions
	}
	eos, pad, err := specialIDs(&cfg, tok)
	if err != nil {
		return nil, err
	}
	if pad >= 0 {
		// Sequence-classification models need pad_token_id (TRL sets it too).
		m.Config.PadTokenID = &pad
	} else {
		pad = 0
	}

	d, err := loadDataFor(&cfg, tok, eos, log, m.Config.Encoder())
	if err != nil {
		return nil, err
	}
	res = &Result{TrainPairs: len(d.train), EvalPairs: len(d.eval), Dropped: d.dropped, Skipped: d.skipped}
	if len(d.train) == 0 {
		return nil, fmt.Errorf("reward: no training pairs left (%d longer than max_length %d dropped, %d bad records skipped)", d.dropped, cfg.MaxLength, d.skipped)
	}
	if len(d.eval) == 0 && cfg.EvalStrategy != "no" {
		why := "no test split and eval_ratio 0"
		if d.eval != nil {
			why = "every eval pair is longer than max_length"
		}
		log.Warn().Msgf("eval_strategy is set but there is no eval data (%s): not evaluating", why)
		cfg.EvalStrategy = "no"
		if cfg.LoadBestModelAtEnd {
			return nil, errors.New("reward: load_best_model_at_end needs eval data")
		}
	}
	log.Info().Int("train_pairs", len(d.train)).Int("eval_pairs", len(d.eval)).Int("dropped_too_long", d.dropped).Int("skipped_bad", d.skipped).Msg("data")

	tr := &train.Trainer[*preference.Batch]{
		Args:   cfg.Args,
		Models: &train.Single{M: m, Extra: checkpoint.TokenizerSaver(tok)},
		Task:   &Task{M: m, CenterRewardsCoefficient: cfg.CenterRewardsCoefficient},
		Train:  &preference.Data{Pairs: d.train, Pad: pad},
		Log:    log,
		Config: rawConfig,
		Name:   "reward",
		Model:  modelID(cfg.Model, cfg.Init),
		Inputs: cfg.inputs(),
	}
	if len(d.eval) > 0 && cfg.EvalStrategy != "no" {
		tr.Eval = &preference.Data{Pairs: d.eval, Pad: pad}
	}
	r, err := tr.Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Result = r
	return res, nil
}

// loadModel loads (or creates) the score model and its tokenizer. The new
// score head is drawn after seeding with cfg.Seed, as TRL calls set_seed
// before from_pretrained.
func loadModel(cfg *Config) (*model.Model, *tokenizer.Tokenizer, error) {
	dt, err := model.ParseDType(cfg.DType)
	if err != nil {
		return nil, nil, fmt.Errorf("reward: %w", err)
	}
	var m *model.Model
	var tok *tokenizer.Tokenizer
	if cfg.Model != "" {
		tensor.ManualSeed(cfg.Seed)
		m, tok, err = checkpoint.Load(cfg.Model, cfg.ModelLoadOptions(model.LoadOptions{Head: model.ScoreHead, NumLabels: 1, DType: dt}))
		if err == nil && cfg.Tokenizer != "" {
			tok, err = checkpoint.LoadTokenizerFor(m, cfg.Model, cfg.Tokenizer)
			if err != nil {
				m.Free()
			}
		}
	} else {
		m, tok, err = checkpoint.New(cfg.Init, cfg.Tokenizer, model.ScoreHead, dt, train.Device, cfg.Seed)
	}
	if err != nil {
		return nil, nil, err
	}
	if m.Config.NumLabels != 1 {
		n := m.Config.NumLabels
		m.Free()
		return nil, nil, fmt.Errorf("reward: %s has num_labels %d, but a reward model outputs one score (num_labels 1)", cfg.Model, n)
	}
	m.NoDropout = cfg.DisableDropout
	if err := cfg.ModelConfig.PreparePEFT(m, cfg.Seed); err != nil {
		m.Free()
		return nil, nil, fmt.Errorf("reward: %w", err)
	}
	return m, tok, nil
}

// specialIDs resolves the eos appended to completions and the pad token:
// TRL's pad_token, else the tokenizer's pad, else its eos (-1: none).
func specialIDs(cfg *Config, tok *tokenizer.Tokenizer) (eos, pad int, err error) {
	eos, pad = tok.EOS(), tok.PAD()
	if cfg.EOSToken != "" {
		id, ok := tok.TokenToID(cfg.EOSToken)
		if !ok {
			return 0, 0, fmt.Errorf("reward: eos_token %q is not in the tokenizer's vocabulary", cfg.EOSToken)
		}
		eos = id
	}
	if cfg.PadToken != "" {
		id, ok := tok.TokenToID(cfg.PadToken)
		if !ok {
			return 0, 0, fmt.Errorf("reward: pad_token %q is not in the tokenizer's vocabulary", cfg.PadToken)
		}
		pad = id
	} else if pad < 0 {
		pad = eos
	}
	return eos, pad, nil
}

// newEncoder tokenises pairs as TRL's RewardTrainer (preference.StyleReward).
func newEncoder(cfg *Config, tok *tokenizer.Tokenizer, eos int) *preference.Encoder {
	return &preference.Encoder{Tok: tok, Style: preference.StyleReward, MaxLength: cfg.MaxLength, TruncationMode: preference.Drop, EOS: eos}
}

// Preview returns the first n training pairs exactly as Run tokenises them
// (rl data show), with the tokenizer, without loading the model.
func Preview(cfg Config, n int, log zerolog.Logger) ([]preference.Pair, *tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, nil, err
	}
	eos, _, err := specialIDs(&cfg, tok)
	if err != nil {
		return nil, nil, err
	}
	cfg.MaxSamples = n
	cfg.EvalStrategy = "no"
	d, err := loadDataFor(&cfg, tok, eos, log, cfg.ModelConfig.IsEncoder(cfg.Init))
	if err != nil {
		return nil, nil, err
	}
	return d.train, tok, nil
}

// data is the tokenised train and eval pairs with what was left out.
type data struct {
	train, eval      []preference.Pair // eval nil: no eval data
	dropped, skipped int
}

// loadData reads the preference splits, extracts implicit prompts,
// tokenises the pairs and drops those longer than max_length (as TRL's
// RewardTrainer filters them).
func loadData(cfg *Config, tok *tokenizer.Tokenizer, eos int, log zerolog.Logger) (*data, error) {
	return loadDataFor(cfg, tok, eos, log, false)
}

// loadDataFor is loadData for a decoder, or with encoder set for an
// encoder reward model: each row is the tokenizer's pair template over
// (prompt, completion) with its token type ids (EncoderPairs).
func loadDataFor(cfg *Config, tok *tokenizer.Tokenizer, eos int, log zerolog.Logger, encoder bool) (*data, error) {
	trainSet, evalSet, loadSkipped, err := loadSplits(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	if cfg.EvalStrategy == "no" {
		evalSet = nil
	}
	trainSet = cfg.Cap(trainSet)
	enc := newEncoder(cfg, tok, eos)
	d := data{skipped: loadSkipped}
	split := func(ds *datasets.Dataset) ([]preference.Pair, error) {
		prefs, err := ds.Preferences()
		if err != nil {
			return nil, fmt.Errorf("reward: %w", err)
		}
		rep := ds.Checked
		d.skipped += rep.Skipped
		if rep.Skipped > 0 {
			log.Warn().Str("split", ds.Name).Int("skipped", rep.Skipped).Strs("reasons", rep.Reasons).Msg("bad records skipped")
		}
		if rep.IdenticalPairs > 0 {
			log.Warn().Str("split", ds.Name).Int("pairs", rep.IdenticalPairs).Msg("pairs with chosen identical to rejected (kept, as TRL does; they teach nothing)")
		}
		var pairs []preference.Pair
		var dropped int
		if encoder {
			pairs, dropped, err = EncoderPairs(tok, prefs, cfg.MaxLength)
		} else {
			pairs, dropped, err = enc.EncodeAll(prefs, log, ds.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("reward: %w", err)
		}
		d.dropped += dropped
		return pairs, nil
	}
	if d.train, err = split(trainSet); err != nil {
		return nil, err
	}
	if evalSet != nil {
		if d.eval, err = split(evalSet); err != nil {
			return nil, err
		}
		if d.eval == nil {
			d.eval = []preference.Pair{}
		}
	}
	return &d, nil
}

// loadSplits loads the train split and an eval split (the named test split
// when the data has one, else eval_ratio of the training split, seeded) and
// counts the records that could not be parsed (with skip_bad_records).
func loadSplits(cfg *Config, log zerolog.Logger) (trainSet, evalSet *datasets.Dataset, skipped int, err error) {
	opts, err := cfg.LoadOptions()
	if err != nil {
		return nil, nil, 0, err
	}
	trainSet, evalSet, err = datasets.LoadTrainEval(cfg.Dataset, cfg.TrainSplit, cfg.TestSplit, cfg.EvalRatio, cfg.Seed, opts)
	if err != nil {
		return nil, nil, 0, err
	}
	count := func(d *datasets.Dataset) {
		skipped += d.Skipped
		if d.Skipped > 0 {
			log.Warn().Str("split", d.Name).Int("skipped", d.Skipped).Strs("reasons", d.SkipReasons).Msg("unreadable records skipped")
		}
	}
	count(trainSet)
	// An eval set held out of the training split carries the same load
	// report (same count, same file:line reasons): count it once.
	if evalSet != nil && !(evalSet.Skipped == trainSet.Skipped && slices.Equal(evalSet.SkipReasons, trainSet.SkipReasons)) {
		count(evalSet)
	}
	return trainSet, evalSet, skipped, nil
}

// EncoderPairs tokenises preference pairs for an encoder reward model as
// rl score (and the encoder reward models' own usage, tokenizer(question,
// answer)) reads them: each row is the tokenizer's pair template
// [CLS] prompt [SEP] completion [SEP] with token type ids 0 then 1, or the
// completion alone with its special tokens when the prompt is empty; no
// eos is appended. Pairs with a row longer than maxLength are dropped (as
// TRL's RewardTrainer filters them) and counted; conversational pairs are
// an error (an encoder tokenizer has no chat template).
func EncoderPairs(tok *tokenizer.Tokenizer, prefs []datasets.Preference, maxLength int) ([]preference.Pair, int, error) {
	var out []preference.Pair
	dropped := 0
	row := func(prompt, completion string) ([]int32, []int8, int, error) {
		var ids, types []int
		var err error
		if prompt == "" {
			ids, err = tok.Encode(completion, true)
			types = make([]int, len(ids))
		} else {
			ids, types, err = tok.EncodePair(prompt, completion, true)
		}
		if err != nil {
			return nil, nil, 0, err
		}
		start := 0
		for start < len(types) && types[start] == 0 && prompt != "" {
			start++
		}
		id32, t8 := make([]int32, len(ids)), make([]int8, len(ids))
		for i := range ids {
			id32[i], t8[i] = int32(ids[i]), int8(types[i])
		}
		return id32, t8, start, nil
	}
	for _, p := range prefs {
		if p.ChosenMessages != nil || p.PromptMessages != nil {
			return nil, 0, fmt.Errorf("%s: conversational pairs need a chat template, which an encoder reward model's tokenizer has none of: give prompt/chosen/rejected as text", p.Src)
		}
		c, ct, cs, err := row(p.Prompt, p.Chosen)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", p.Src, err)
		}
		r, rt, rs, err := row(p.Prompt, p.Rejected)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", p.Src, err)
		}
		if len(c) > maxLength || len(r) > maxLength {
			dropped++
			continue
		}
		out = append(out, preference.Pair{Chosen: c, Rejected: r, ChosenStart: cs, RejectedStart: rs, Margin: p.Margin, Src: p.Src, ChosenTypes: ct, RejectedTypes: rt})
	}
	return out, dropped, nil
}
