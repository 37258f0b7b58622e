package tokenizer

import (
	"os"
	"path/filepath"
)

// HasFiles reports whether dir holds tokenizer files Load can read
// (tokenizer.json, GPT-2's vocab.json and merges.txt, or a SentencePiece
// tokenizer.model): a peft adapter folder may carry none, and then its
// base's are used.
func HasFiles(dir string) bool {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	return exists(TokenizerFile) || exists(VocabFile) && exists(MergesFile) || exists("tokenizer.model")
}
