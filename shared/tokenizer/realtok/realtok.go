// Package realtok gives tests the real tokenizers of current models
// (Llama-3.1, Qwen3, Gemma-3, Llama-2), pruned to the tokens of a fixed set
// of texts, and the ids Hugging Face's own tokenizers give for those texts
// with the full files. tools/goldens/chat_tokens.py made both; see it for
// why pruning keeps these texts' tokens exact.
package realtok

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rlsuite/rl/datasets"
)

// Names are the tokenizers there are.
var Names = []string{"llama3_1", "qwen3", "gemma3", "llama2"}

// Case is one text and its golden ids.
type Case struct {
	Kind                string             `json:"kind"` // chat, messages or pair
	Case                int                `json:"case"`
	Part                string             `json:"part"` // prompt, chosen, rejected; full, prefixN; prompt, full, full_eos
	Messages            []datasets.Message `json:"messages"`
	AddGenerationPrompt bool               `json:"add_generation_prompt"`
	Prompt              string             `json:"prompt"`
	Completion          string             `json:"completion"`
	Text                string             `json:"text"`        // the rendered or plain text
	IDs                 []int              `json:"ids"`         // tokenizer(text, add_special_tokens=False)
	IDsSpecial          []int              `json:"ids_special"` // tokenizer(text)
}

// Set is one tokenizer's cases.
type Set struct {
	EOSToken string `json:"eos_token"`
	BOSToken string `json:"bos_token"`
	Cases    []Case `json:"cases"`
}

// Find returns the case of kind, number and part.
func (s Set) Find(t testing.TB, kind string, n int, part string) Case {
	t.Helper()
	for _, c := range s.Cases {
		if c.Kind == kind && c.Case == n && c.Part == part {
			return c
		}
	}
	t.Fatalf("realtok: no case %s %d %s", kind, n, part)
	return Case{}
}

// Count returns how many cases of kind there are (by number).
func (s Set) Count(kind string) int {
	n := 0
	for _, c := range s.Cases {
		if c.Kind == kind {
			n = max(n, c.Case+1)
		}
	}
	return n
}

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "real")
}

// Dir returns the directory of tokenizer name (tokenizer.json and
// tokenizer_config.json).
func Dir(name string) string { return filepath.Join(root(), name) }

// Goldens reads the golden cases of every tokenizer.
func Goldens(t testing.TB) map[string]Set {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(), "goldens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]Set
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}
