package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// TokenizerFingerprintFile, written next to a model's weights, records the
// tokenizer the model was saved with, so that another tokenizer (the same
// size or smaller, which the vocabulary-size check lets through) is caught.
const TokenizerFingerprintFile = "rl_tokenizer.json"

// Fingerprint identifies a tokenizer by content: a hash of its vocabulary
// (every id's token, in id order) and its special token ids.
type Fingerprint struct {
	VocabSHA256 string `json:"vocab_sha256"`
	VocabSize   int    `json:"vocab_size"`
	BOS         int    `json:"bos_token_id"`
	EOS         int    `json:"eos_token_id"`
	PAD         int    `json:"pad_token_id"`
	UNK         int    `json:"unk_token_id"`
}

// FingerprintOf computes tok's fingerprint.
func FingerprintOf(tok *tokenizer.Tokenizer) Fingerprint {
	h := sha256.New()
	for id := 0; id < tok.VocabSize(); id++ {
		s, ok := tok.IDToToken(id)
		if !ok {
			h.Write([]byte{1}) // a hole in the ids
			continue
		}
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return Fingerprint{VocabSHA256: hex.EncodeToString(h.Sum(nil)), VocabSize: tok.VocabSize(),
		BOS: tok.BOS(), EOS: tok.EOS(), PAD: tok.PAD(), UNK: tok.UNK()}
}

// SaveTokenizer writes tok's files and its fingerprint into dir (a model
// directory: the fingerprint says which tokenizer the weights go with).
func SaveTokenizer(dir string, tok *tokenizer.Tokenizer) error {
	if err := tok.Save(dir); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(FingerprintOf(tok), "", "  ")
	if err := fsutil.WriteFile(filepath.Join(dir, TokenizerFingerprintFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// TokenizerSaver is SaveTokenizer for tok, as a train.Single's Extra.
func TokenizerSaver(tok *tokenizer.Tokenizer) func(dir string) error {
	return func(dir string) error { return SaveTokenizer(dir, tok) }
}

// CheckSaved reports a tokenizer (read from tokPath) that is not the one
// the model in modelDir was saved with, by content. A model saved without a
// fingerprint (by an older rl, or another tool) passes.
func CheckSaved(modelDir string, tok *tokenizer.Tokenizer, tokPath string) error {
	p := filepath.Join(modelDir, TokenizerFingerprintFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var want Fingerprint
	if err := json.Unmarshal(b, &want); err != nil {
		return fmt.Errorf("checkpoint: %s: %w (delete it to skip the tokenizer check)", p, err)
	}
	got := FingerprintOf(tok)
	if got == want {
		return nil
	}
	what := "its vocabulary differs"
	switch {
	case got.VocabSize != want.VocabSize:
		what = fmt.Sprintf("it has %d tokens, the model's had %d", got.VocabSize, want.VocabSize)
	case got.BOS != want.BOS || got.EOS != want.EOS || got.PAD != want.PAD || got.UNK != want.UNK:
		what = fmt.Sprintf("its special token ids (bos %d, eos %d, pad %d, unk %d) differ from the model's (bos %d, eos %d, pad %d, unk %d)",
			got.BOS, got.EOS, got.PAD, got.UNK, want.BOS, want.EOS, want.PAD, want.UNK)
	}
	return fmt.Errorf("checkpoint: %s is not the tokenizer the model in %s was saved with (%s; %s records it): use the model's own tokenizer, or delete %s if you really mean this one",
		tokPath, modelDir, what, p, p)
}

// ModelFiles lists the files of a model or tokenizer that dir already
// holds (config.json, weights, tokenizer.json), for commands that refuse
// to replace them.
func ModelFiles(dir string) []string {
	var out []string
	for _, f := range []string{"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			out = append(out, f)
		}
	}
	return out
}
