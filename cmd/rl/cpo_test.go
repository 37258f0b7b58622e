package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCPOCommand: rl data show tokenises CPO pairs as ORPO's (TRL's
// tokenize_row is the same code); rl cpo trains from flags with TRL's
// names and refuses bad values naming the flag.
func TestCPOCommand(t *testing.T) {
	lm := tinyModel(t, "lm")
	data := filepath.Join(t.TempDir(), "pairs.jsonl")
	os.WriteFile(data, []byte(`{"prompt":"the quick ","chosen":"brown fox","rejected":"lazy dog"}`+"\n"+`{"prompt":"one two ","chosen":"three","rejected":"four four"}`+"\n"), 0o644)
	show := func(trainer string) []shown {
		out, err := runApp(t, "data", "show", "--trainer", trainer, "--model", lm, "--dataset", data, "--json")
		if err != nil {
			t.Fatalf("data show --trainer %s: %v", trainer, err)
		}
		var ex []shown // one JSON array (chosen, rejected) a pair
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var pair []shown
			if err := dec.Decode(&pair); err != nil {
				t.Fatalf("data show --trainer %s: %q: %v", trainer, out, err)
			}
			ex = append(ex, pair...)
		}
		if len(ex) != 4 {
			t.Fatalf("data show --trainer %s: %d rows, want 4", trainer, len(ex))
		}
		return ex
	}
	if c, o := show("cpo"), show("orpo"); !reflect.DeepEqual(c, o) {
		t.Errorf("cpo pairs %v, want ORPO's %v", c, o)
	}
	out := t.TempDir()
	if _, err := runApp(t, "cpo", "--model", lm, "--dataset", data, "--output-dir", out, "--max-steps", "2", "--loss-type", "simpo", "--cpo_alpha", "0", "--simpo-gamma", "1", "--beta", "2", "--save-strategy", "no"); err != nil {
		t.Fatalf("rl cpo: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "trainer_state.json")); err != nil {
		t.Errorf("rl cpo wrote no trainer_state.json: %v", err)
	}
	peft := t.TempDir() // the shared ModelConfig: LoRA adapters, as the other trainers
	if _, err := runApp(t, "cpo", "--model", lm, "--dataset", data, "--output-dir", peft, "--max-steps", "1", "--use-peft", "--lora-target-modules", "c_attn", "--save-strategy", "no"); err != nil {
		t.Fatalf("rl cpo --use-peft: %v", err)
	}
	if _, err := os.Stat(filepath.Join(peft, "adapter_config.json")); err != nil {
		t.Errorf("rl cpo --use-peft wrote no adapter_config.json: %v", err)
	}
	_, err := runApp(t, "cpo", "--model", lm, "--dataset", data, "--output-dir", t.TempDir(), "--beta", "-1", "--loss-type", "dpo")
	if err == nil || !strings.Contains(err.Error(), "beta") || !strings.Contains(err.Error(), `loss_type "dpo"`) {
		t.Errorf("error %v, want one naming beta and loss_type", err)
	}
}
