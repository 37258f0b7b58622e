package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSaveCompanionFiles: tokenizer.model, vocab.json, merges.txt and
// chat_template.jinja go through Load and Save unchanged, and
// chat_template.jinja wins over tokenizer_config.json's chat_template as
// in transformers' from_pretrained.
func TestSaveCompanionFiles(t *testing.T) {
	dir := tinyDir(t)
	files := map[string]string{
		"tokenizer.model":     "\x0a\x0bsentencepiece bytes\x00\xff",
		"vocab.json":          `{"a": 0}`,
		"merges.txt":          "#version: 0.2\na b\n",
		"chat_template.jinja": "{% for m in messages %}{{ m.content }}{% endfor %}",
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	writeFile(t, filepath.Join(dir, ConfigFile), `{"chat_template": "stale", "clean_up_tokenization_spaces": false}`)
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ChatTemplate() != files["chat_template.jinja"] {
		t.Errorf("ChatTemplate() = %q, want chat_template.jinja's", tk.ChatTemplate())
	}
	out := t.TempDir()
	if err := tk.Save(out); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != want {
			t.Errorf("saved %s = %q (err %v), want %q", name, got, err, want)
		}
	}
	re, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if re.ChatTemplate() != files["chat_template.jinja"] {
		t.Errorf("reloaded ChatTemplate() = %q", re.ChatTemplate())
	}
	// The real Llama-2 directory's tokenizer.model comes through too.
	if src := filepath.Join("..", "..", "..", "shared", "data", "llama-tokenizer-hf-internal-testing"); fileExists(src) {
		tk, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := tk.Save(out); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(filepath.Join(src, "tokenizer.model"))
		b, err := os.ReadFile(filepath.Join(out, "tokenizer.model"))
		if err != nil || len(a) == 0 || string(a) != string(b) {
			t.Errorf("Llama-2 tokenizer.model not copied (err %v, %d vs %d bytes)", err, len(b), len(a))
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
