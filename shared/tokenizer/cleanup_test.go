package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCleanUpTokenization checks transformers' clean_up_tokenization
// (tokenization_utils_base.py): the ten replacements applied in turn, each
// over the whole string as Python's str.replace; expected strings worked
// out by hand from that rule.
func TestCleanUpTokenization(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Hello , world !", "Hello, world!"},
		{"What ?", "What?"},
		{"I do n't know .", "I don't know."},
		{"I 'm here", "I'm here"},
		{"it 's", "it's"},
		{"we 've , they 're", "we've, they're"},
		{"it ' s", "it's"}, // " ' " -> "'"
		{"a ' b ' c", "a'b'c"},
		{"a ' ' b", "a'' b"},                  // non-overlapping, left to right
		{"x  .", "x ."},                       // one pass: one space removed
		{" ..", ".."},                         // only the space before the first
		{"you 'll , he 'd", "you 'll, he 'd"}, // 'll and 'd are not in the list
		{"Don 't", "Don 't"},                  // nor 't alone
		{"rock 'n' roll", "rock 'n' roll"},
		{"no change here.", "no change here."},
		{" ?!", "?!"},
		{"", ""},
	} {
		if got := CleanUpTokenization(tt.in); got != tt.want {
			t.Errorf("CleanUpTokenization(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDecodeCleanUp: Decode applies clean_up_tokenization_spaces when
// tokenizer_config.json sets it, as transformers' decode does by default,
// and not when it is false or absent.
func TestDecodeCleanUp(t *testing.T) {
	text := "Hello , world ! I do n't know ."
	for _, tt := range []struct {
		config string // "" : no tokenizer_config.json
		want   string
	}{
		{"", text},
		{`{"clean_up_tokenization_spaces": false}`, text},
		{`{"clean_up_tokenization_spaces": null}`, text},
		{`{"clean_up_tokenization_spaces": true}`, "Hello, world! I don't know."},
	} {
		dir := tinyDir(t)
		cfg := filepath.Join(dir, ConfigFile)
		if tt.config == "" {
			os.Remove(cfg)
		} else {
			writeFile(t, cfg, tt.config)
		}
		tk, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(t, tk, encode(t, tk, text, false), true); got != tt.want {
			t.Errorf("config %s: Decode = %q, want %q", tt.config, got, tt.want)
		}
		// Saved and loaded again, the setting holds.
		out := t.TempDir()
		if err := tk.Save(out); err != nil {
			t.Fatal(err)
		}
		tk2, err := Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if tk2.CleanUpTokenizationSpaces() != tk.CleanUpTokenizationSpaces() {
			t.Errorf("config %s: clean_up_tokenization_spaces %v after save, was %v", tt.config, tk2.CleanUpTokenizationSpaces(), tk.CleanUpTokenizationSpaces())
		}
	}
	if _, err := func() (*Tokenizer, error) {
		dir := tinyDir(t)
		writeFile(t, filepath.Join(dir, ConfigFile), `{"clean_up_tokenization_spaces": "yes"}`)
		return Load(dir)
	}(); err == nil {
		t.Error("a string clean_up_tokenization_spaces loaded without error")
	}
}
