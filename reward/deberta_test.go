package reward

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// fixture: a tiny DeBERTa-v3 reward model (regression head) with a
// Unigram tokenizer of whole words, written by tools/goldens/deberta.py.
const debertaRM = "../shared/model/testdata/deberta/v3"

// the fixture tokenizer's pieces after [PAD] [CLS] [SEP] [UNK] (ids 4..)
var rmWords = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa " +
	"quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two three four five six seven eight nine zero")

// TestEncoderRewardModelScores: rl score's scorer on a DeBERTa-v3 reward
// model encodes each (prompt, completion) as tokenizer(prompt, completion)
// ([CLS] prompt [SEP] completion [SEP]) and returns the regression logit
// that tools/goldens/deberta.py computed with transformers' math, to 1e-5,
// in batches that pad rows of other lengths.
func TestEncoderRewardModelScores(t *testing.T) {
	var g struct {
		InputIDs      [][]int64   `json:"input_ids"`
		AttentionMask [][]int64   `json:"attention_mask"`
		Logits        [][]float64 `json:"logits"`
	}
	b, err := os.ReadFile(filepath.Join(debertaRM, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScorer(debertaRM, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	if s.M.Config.Family() != model.DeBERTaV2 || !s.M.Config.Encoder() {
		t.Fatalf("LoadScorer loaded a %s model, want the deberta-v2 encoder", s.M.Config.ModelType)
	}
	var prompts, completions []string
	for i, row := range g.InputIDs {
		var ids []int64
		for j, id := range row {
			if g.AttentionMask[i][j] == 1 {
				ids = append(ids, id)
			}
		}
		sep := slices.Index(ids, 2)
		words := func(xs []int64) string {
			var w []string
			for _, id := range xs {
				w = append(w, rmWords[id-4])
			}
			return strings.Join(w, " ")
		}
		p, c := words(ids[1:sep]), words(ids[sep+1:len(ids)-1])
		got, _, err := s.Tok.EncodePair(p, c, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(toInt64(got), ids) {
			t.Fatalf("EncodePair(%q, %q) = %v, want %v", p, c, got, ids)
		}
		prompts, completions = append(prompts, p), append(completions, c)
	}
	s.BatchSize = 2
	scores, err := s.Score(prompts, completions)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range g.Logits {
		if math.Abs(scores[i]-want[0]) > 1e-5 {
			t.Errorf("score %d (%q, %q) = %v, want %v", i, prompts[i], completions[i], scores[i], want[0])
		}
	}
}

func toInt64(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// TestEncoderScorerNeedsOneLabel: a config that says two labels over the
// one-output classifier is refused, naming the classifier's shapes.
func TestEncoderScorerNeedsOneLabel(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(debertaRM, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	cfg, _ := os.ReadFile(filepath.Join(debertaRM, "config.json"))
	var m map[string]any
	json.Unmarshal(cfg, &m)
	m["id2label"] = map[string]string{"0": "a", "1": "b"}
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	_, err := LoadScorer(dir, tensor.CPU)
	if err == nil || !strings.Contains(err.Error(), "config.json has 2 labels (num_labels / id2label) but classifier.weight has shape [1 16]") {
		t.Errorf("LoadScorer(2-label DeBERTa) = %v, want a classifier shape error", err)
	}
}
