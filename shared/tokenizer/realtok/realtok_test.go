package realtok

import (
	"slices"
	"testing"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// TestIDsAndTemplatesMatchHuggingFace: on every golden text, rl's ids equal
// Hugging Face tokenizers' with and without special tokens, and rl renders
// each chat template to the text Jinja2 renders.
func TestIDsAndTemplatesMatchHuggingFace(t *testing.T) {
	for name, set := range Goldens(t) {
		tok, err := tokenizer.Load(Dir(name))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range set.Cases {
			got, err := tok.Encode(c.Text, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.IDs) {
				t.Errorf("%s %s %d %s: ids %v, want %v", name, c.Kind, c.Case, c.Part, got, c.IDs)
			}
			if got, _ = tok.Encode(c.Text, true); !slices.Equal(got, c.IDsSpecial) {
				t.Errorf("%s %s %d %s: ids with special tokens %v, want %v", name, c.Kind, c.Case, c.Part, got, c.IDsSpecial)
			}
			if c.Messages != nil {
				text, err := datasets.ApplyChatTemplate(tok.ChatTemplate(), c.Messages, c.AddGenerationPrompt, tok.TemplateSpecials())
				if err != nil {
					t.Fatal(err)
				}
				if text != c.Text {
					t.Errorf("%s %s %d %s: rendered %q, want %q", name, c.Kind, c.Case, c.Part, text, c.Text)
				}
			}
		}
	}
}
