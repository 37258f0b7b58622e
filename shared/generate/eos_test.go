package generate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rlsuite/rl/shared/model"
)

// firstStop is the index of the first token of toks in ids, or -1.
func firstStop(toks, ids []int) int {
	for i, tok := range toks {
		if slices.Contains(ids, tok) {
			return i
		}
	}
	return -1
}

// TestStopsAtAnyEOS: with a list of eos ids each row stops right after the
// first token that is any of them (transformers' list-valued eos_token_id).
func TestStopsAtAnyEOS(t *testing.T) {
	m := tinyModel(t, "tiny-llama")
	defer m.Free()
	prompts := [][]int{{3, 1, 4}, {15, 9}, {2, 6, 5, 3}}
	cfg := Config{MaxNewTokens: 12, TopP: 1}
	free, err := Generate(m, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// One eos id from each row's free run, at different depths, and one
	// that never comes; the list's order does not matter.
	var eos []int
	for i, r := range free {
		k := 2 + i*3
		if k >= len(r.Tokens) {
			k = len(r.Tokens) - 1
		}
		eos = append(eos, r.Tokens[k])
	}
	slices.Reverse(eos)
	unused := 0
	for slices.ContainsFunc(free, func(r Result) bool { return slices.Contains(r.Tokens, unused) }) {
		unused++
	}
	eos = append([]int{unused}, eos...)
	cfg.EOSTokenIDs = eos
	got, err := Generate(m, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		k := firstStop(free[i].Tokens, eos)
		if k < 0 {
			t.Fatalf("row %d: no eos in %v", i, free[i].Tokens)
		}
		if want := free[i].Tokens[:k+1]; !slices.Equal(got[i].Tokens, want) || !got[i].Finished {
			t.Errorf("row %d with eos %v: got %v finished=%v, want %v finished", i, eos, got[i].Tokens, got[i].Finished, want)
		}
	}
}

// TestStopIDsFromCheckpoint: a checkpoint whose generation_config.json
// holds an eos list (Llama-3.1's layout) stops generation at each of
// them; without the file, config.json's list is used; the tokenizer's eos
// is added.
func TestStopIDsFromCheckpoint(t *testing.T) {
	m := tinyModel(t, "tiny-llama")
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	free, err := Generate(m, [][]int{{10, 20, 30}}, Config{MaxNewTokens: 8, TopP: 1})
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	toks := free[0].Tokens
	k := 3
	for k > 0 && slices.Contains(toks[:k], toks[k]) {
		k--
	}
	stopAt := toks[k] // the 3rd entry of the list below
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	_ = json.Unmarshal(b, &cfg)
	cfg["eos_token_id"] = []int{95, 96}
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	gen := `{"do_sample": true, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [95, 94, ` + itoa(stopAt) + `]}`
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(gen), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if got, want := m.StopIDs(1, 95, -1), []int{95, 94, stopAt, 1}; !slices.Equal(got, want) {
		t.Errorf("StopIDs = %v, want %v", got, want)
	}
	res, err := Generate(m, [][]int{{10, 20, 30}}, Config{MaxNewTokens: 8, TopP: 1, EOSTokenIDs: m.StopIDs()})
	if err != nil {
		t.Fatal(err)
	}
	if want := toks[:k+1]; !slices.Equal(res[0].Tokens, want) || !res[0].Finished {
		t.Errorf("with eos %v: got %v, want %v finished", m.StopIDs(), res[0].Tokens, want)
	}
	// Without generation_config.json: config.json's list.
	m.Generation = nil
	if got, want := m.StopIDs(7), []int{95, 96, 7}; !slices.Equal(got, want) {
		t.Errorf("StopIDs without generation_config = %v, want %v", got, want)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
