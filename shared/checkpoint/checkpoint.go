// Package checkpoint loads and creates the model + tokenizer pairs that rl's
// stages pass to each other as Hugging Face directories.
package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Load reads the model and tokenizer saved in dir, and checks that they fit
// together.
func Load(dir string, opts model.LoadOptions) (*model.Model, *tokenizer.Tokenizer, error) {
	tokDir := dir
	if model.IsAdapterDir(dir) && !tokenizer.HasFiles(dir) { // a bare peft adapter: the base's tokenizer
		base, err := model.AdapterBase(dir, opts.BaseModel)
		if err != nil {
			return nil, nil, err
		}
		tokDir = base
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.Load(dir, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := Check(m, tok, filepath.Join(tokDir, "tokenizer.json")); err != nil {
		m.Free()
		return nil, nil, err
	}
	if err := CheckSaved(dir, tok, filepath.Join(tokDir, "tokenizer.json")); err != nil {
		m.Free()
		return nil, nil, err
	}
	fillSpecialIDs(m.Config, tok)
	return m, tok, nil
}

// Check reports a tokenizer whose ids do not fit the model's vocabulary.
func Check(m *model.Model, tok *tokenizer.Tokenizer, tokPath string) error {
	if tok.VocabSize() > m.Config.VocabSize {
		return fmt.Errorf("checkpoint: %s has %d tokens but the model's vocab_size is %d: the tokenizer does not match the model", tokPath, tok.VocabSize(), m.Config.VocabSize)
	}
	return nil
}

func fillSpecialIDs(c *model.Config, tok *tokenizer.Tokenizer) {
	set := func(p **int, id int) {
		if *p == nil && id >= 0 {
			v := id
			*p = &v
		}
	}
	set(&c.BOSTokenID, tok.BOS())
	set(&c.EOSTokenID, tok.EOS())
}

// New creates a randomly initialised model for a tokenizer. init is a preset
// name (see model.Preset) or the path of a config.json; the vocabulary size
// comes from the tokenizer (rounded up to a multiple of 64 for presets, as
// nanoGPT does for speed).
func New(init, tokenizerDir string, h model.Head, dt tensor.DType, dev tensor.Device, seed int64) (*model.Model, *tokenizer.Tokenizer, error) {
	return NewWithLabels(init, tokenizerDir, h, 1, dt, dev, seed)
}

// NewWithLabels is New with numLabels classes for a score head whose
// config names none (New: 1, a reward or value model).
func NewWithLabels(init, tokenizerDir string, h model.Head, numLabels int, dt tensor.DType, dev tensor.Device, seed int64) (*model.Model, *tokenizer.Tokenizer, error) {
	if tokenizerDir == "" {
		return nil, nil, fmt.Errorf("checkpoint: --init %s needs --tokenizer (a directory with tokenizer.json; train one with `rl tokenizer train`)", init)
	}
	tok, err := tokenizer.Load(tokenizerDir)
	if err != nil {
		return nil, nil, err
	}
	var cfg *model.Config
	if strings.HasSuffix(init, ".json") {
		cfg, err = model.ReadConfig(init)
	} else {
		vocab := (tok.VocabSize() + 63) / 64 * 64
		if cfg, err = model.Preset(init, vocab); err == nil {
			cfg.FitTokenizer(tok.PAD())
		}
	}
	if err != nil {
		return nil, nil, err
	}
	fillSpecialIDs(cfg, tok)
	if h == model.ScoreHead && cfg.NumLabels == 0 {
		cfg.NumLabels = numLabels
	}
	tensor.ManualSeed(seed)
	m, err := model.New(cfg, h, dt, dev)
	if err != nil {
		return nil, nil, err
	}
	if err := Check(m, tok, filepath.Join(tokenizerDir, "tokenizer.json")); err != nil {
		m.Free()
		return nil, nil, err
	}
	return m, tok, nil
}

// Save writes model and tokenizer (with its fingerprint) into dir; a model
// with LoRA adapters writes the adapter alone (peft's save_pretrained).
func Save(dir string, m *model.Model, tok *tokenizer.Tokenizer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	save := m.Save
	if m.HasAdapters() {
		save = m.SaveAdapter
	}
	if err := save(dir); err != nil {
		return err
	}
	return SaveTokenizer(dir, tok)
}

// LoadTokenizerFor loads the tokenizer in tokDir for the model saved in
// modelDir, checking that it fits (size) and is the one the model was
// saved with (content).
func LoadTokenizerFor(m *model.Model, modelDir, tokDir string) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(tokDir, "tokenizer.json")
	if err := Check(m, tok, p); err != nil {
		return nil, err
	}
	if err := CheckSaved(modelDir, tok, p); err != nil {
		return nil, err
	}
	return tok, nil
}
