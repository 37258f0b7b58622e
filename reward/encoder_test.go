package reward

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
)

// writeRobertaRM copies shared/model's RoBERTa fixture (a
// RobertaForSequenceClassification with problem_type regression and one
// label: an encoder reward model) with a WordLevel tokenizer whose word
// "wN" is id N and RobertaProcessing's <s> A </s> template.
func writeRobertaRM(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "shared", "model", "testdata", "roberta")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vocab := map[string]int{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
	for i := 4; i < 60; i++ {
		vocab[fmt.Sprintf("w%d", i)] = i
	}
	var added []map[string]any
	for i, s := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
		added = append(added, map[string]any{"id": i, "content": s, "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
	}
	tj := map[string]any{"version": "1.0", "added_tokens": added, "normalizer": nil,
		"pre_tokenizer":  map[string]any{"type": "WhitespaceSplit"},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 2}, "cls": []any{"<s>", 0}, "trim_offsets": true, "add_prefix_space": false},
		"decoder":        nil, "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}
	b, _ := json.Marshal(tj)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "special_tokens_map.json"), []byte(`{"bos_token":"<s>","eos_token":"</s>","pad_token":"<pad>","unk_token":"<unk>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestScoreEncoderRewardModel: rl score's Scorer with an encoder reward
// model reads <s> of each row, batched with padding (bidirectional
// attention masked), and gives tools/goldens/encoders.py's logits for the
// rows the script ran: <s> w17 w23 w8 w41 w9 </s>, <s> w30 w11 </s>.
func TestScoreEncoderRewardModel(t *testing.T) {
	s, err := LoadScorer(writeRobertaRM(t), tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	var gold struct {
		Logits [][]float64 `json:"logits"`
	}
	b, err := os.ReadFile(filepath.Join("..", "shared", "model", "testdata", "roberta", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &gold); err != nil {
		t.Fatal(err)
	}
	got, err := s.Score([]string{"", ""}, []string{"w17 w23 w8 w41 w9", "w30 w11"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{gold.Logits[0][0], gold.Logits[1][0]} {
		if math.Abs(got[i]-want) > 1e-5 {
			t.Errorf("score %d = %.7f, want %.7f (the golden logits)", i, got[i], want)
		}
	}
	// a prompt and a completion are read as a pair: <s> a </s></s> b </s>
	pair, err := s.Score([]string{"w17 w23"}, []string{"w8"})
	if err != nil {
		t.Fatal(err)
	}
	ids, _, err := s.Tok.EncodePair("w17 w23", "w8", true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 17, 23, 2, 2, 8, 2}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("pair template gives %v, want %v", ids, want)
	}
	var direct float64
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			row := []int64{0, 17, 23, 2, 2, 8, 2}
			direct = LastScores(s.M, row, []int64{6}, 1, 7).Float64s()[0]
		})
	})
	if math.Abs(pair[0]-direct) > 1e-6 {
		t.Errorf("pair score %.7f, the pair template's row scores %.7f", pair[0], direct)
	}
}

// TestScoreBertPairTypes: a BERT reward model (shared/model's BERT fixture
// cut to one label) reads a (prompt, completion) pair with token type ids
// 0 and 1, as tokenizer(prompt, completion) gives them.
func TestScoreBertPairTypes(t *testing.T) {
	dir := writeBertRM(t)
	s, err := LoadScorer(dir, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	got, err := s.Score([]string{"w17 w23"}, []string{"w8 w9"})
	if err != nil {
		t.Fatal(err)
	}
	row := []int64{1, 17, 23, 2, 8, 9, 2}
	var typed, untyped float64
	tensor.NoGrad(func() {
		tensor.Tidy(func() {
			typed = scoresAt(s.M, row, []int64{0, 0, 0, 0, 1, 1, 1}, []int64{6}, 1, 7, false).Float64s()[0]
			untyped = scoresAt(s.M, row, nil, []int64{6}, 1, 7, false).Float64s()[0]
		})
	})
	if math.Abs(got[0]-typed) > 1e-6 || math.Abs(typed-untyped) < 1e-4 {
		t.Errorf("pair score %.7f, want %.7f (type ids 0 then 1; all 0 gives %.7f)", got[0], typed, untyped)
	}
}

// writeBertRM writes shared/model's BERT fixture as a reward model (the
// classifier's first row: num_labels 1) with a WordLevel tokenizer whose
// word "wN" is id N and BertProcessing's [CLS] A [SEP] B [SEP] template.
func writeBertRM(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "shared", "model", "testdata", "bert")
	f, err := safetensors.ReadModelDir(src)
	if err != nil {
		t.Fatal(err)
	}
	out := &safetensors.File{Tensors: map[string]safetensors.Tensor{}}
	for _, n := range f.Names() {
		st := f.Tensors[n]
		if strings.HasPrefix(n, "classifier.") { // keep the first label's row
			st.Data = st.Data[:len(st.Data)/int(st.Shape[0])]
			st.Shape = append([]int64{1}, st.Shape[1:]...)
		}
		if !strings.HasSuffix(n, "position_ids") {
			out.Tensors[n] = st
		}
	}
	dir := t.TempDir()
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), out); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(src, "config.json"))
	_ = json.Unmarshal(b, &cfg)
	cfg["id2label"], cfg["label2id"] = map[string]any{"0": "LABEL_0"}, map[string]any{"LABEL_0": 0}
	b, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	writeBertWordTokenizer(dir)
	return dir
}

// writeDebertaRM writes a new DeBERTa-v3 reward model (tiny-deberta's
// layout at width 32, 2 layers, one regression label) with
// writeBertWordTokenizer's tokenizer.
func writeDebertaRM(t *testing.T) string {
	t.Helper()
	c, err := model.Preset("tiny-deberta", 64)
	if err != nil {
		t.Fatal(err)
	}
	c.HiddenSize, c.NumLayers, c.HeadDim, c.IntermediateSize, c.DeBERTa.EmbeddingSize, c.NumLabels = 32, 2, 8, 64, 32, 1
	tensor.ManualSeed(5)
	m, err := model.New(c.Clone(), model.ScoreHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	writeBertWordTokenizer(dir)
	return dir
}

// writeBertWordTokenizer writes a WordLevel tokenizer.json whose word "wN"
// is id N, with [PAD] [CLS] [SEP] [UNK] as 0..3 and BertProcessing's
// [CLS] A [SEP] B [SEP] template.
func writeBertWordTokenizer(dir string) {
	vocab := map[string]int{"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3}
	for i := 4; i < 60; i++ {
		vocab[fmt.Sprintf("w%d", i)] = i
	}
	var added []map[string]any
	for s, i := range map[string]int{"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3} {
		added = append(added, map[string]any{"id": i, "content": s, "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
	}
	tj, _ := json.Marshal(map[string]any{"version": "1.0", "added_tokens": added, "normalizer": nil,
		"pre_tokenizer":  map[string]any{"type": "WhitespaceSplit"},
		"post_processor": map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 2}, "cls": []any{"[CLS]", 1}},
		"decoder":        nil, "model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}})
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644)
}

// encoderPrefs returns n preference pairs in the "wN" vocabulary: a
// prompt of two words, the chosen completion holds a word of w20..w29,
// the rejected one a word of w30..w39 (each among filler words w40..w49).
func encoderPrefs(n int, seed uint64) []map[string]any {
	r := rand.New(rand.NewPCG(seed, 5))
	w := func(lo int) string { return fmt.Sprintf("w%d", lo+r.IntN(10)) }
	completion := func(lo int) string {
		words := []string{w(40), w(40)}
		words = slices.Insert(words, r.IntN(3), w(lo))
		return strings.Join(words, " ")
	}
	var out []map[string]any
	for range n {
		out = append(out, map[string]any{"prompt": w(4) + " " + w(4), "chosen": completion(20), "rejected": completion(30)})
	}
	return out
}

// TestRewardTrainsEncoder: rl reward trains a BERT and a DeBERTa-v3
// reward model on (prompt, completion) pairs encoded as the tokenizer's
// pair ([CLS] prompt [SEP] completion [SEP], type ids 0 then 1): the eval
// loss falls from about ln 2 and the accuracy rises, the checkpoint stays
// a …ForSequenceClassification of its family with one label, and rl
// score's Scorer gives the saved model's scores exactly as training
// computed them.
func TestRewardTrainsEncoder(t *testing.T) {
	for _, tc := range []struct {
		name, arch string
		write      func(*testing.T) string
	}{
		{"bert", "BertForSequenceClassification", writeBertRM},
		{"deberta", "DebertaV2ForSequenceClassification", writeDebertaRM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.write(t)
			data := t.TempDir()
			writeJSONL(t, filepath.Join(data, "train.jsonl"), encoderPrefs(256, 1))
			evalRows := encoderPrefs(48, 2)
			writeJSONL(t, filepath.Join(data, "test.jsonl"), evalRows)
			out := t.TempDir()
			cfg := DefaultConfig()
			cfg.Model = dir
			cfg.Dataset = data
			cfg.OutputDir = out
			cfg.MaxSteps = 48
			cfg.PerDeviceTrainBatchSize = 16
			cfg.PerDeviceEvalBatchSize = 16
			cfg.LearningRate = 3e-3
			cfg.WarmupSteps = 4
			cfg.EvalStrategy = "steps"
			cfg.EvalSteps = 24
			cfg.EvalOnStart = true
			cfg.SaveStrategy = "no"
			res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := preftest.LogHistory(t, out)
			accs, losses := preftest.Series(h, "eval_accuracy"), preftest.Series(h, "eval_loss")
			t.Logf("eval_accuracy %v eval_loss %v", accs, losses)
			if res.TrainPairs != 256 || len(accs) != 3 || losses[2] > losses[0]/2 || accs[2] < 0.9 || accs[2] <= accs[0] {
				t.Fatalf("train pairs %d, eval_accuracy %v, eval_loss %v: want the loss halved and accuracy >= 0.9", res.TrainPairs, accs, losses)
			}
			b, _ := os.ReadFile(filepath.Join(out, "config.json"))
			if !strings.Contains(string(b), `"`+tc.arch+`"`) {
				t.Errorf("saved config %s", b)
			}
			s, err := LoadScorer(out, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Free()
			var prompts, completions []string
			var prefs []datasets.Preference
			for _, r := range evalRows {
				p := datasets.Preference{Prompt: r["prompt"].(string), Chosen: r["chosen"].(string), Rejected: r["rejected"].(string)}
				prefs = append(prefs, p)
				prompts = append(prompts, p.Prompt, p.Prompt)
				completions = append(completions, p.Chosen, p.Rejected)
			}
			got, err := s.Score(prompts, completions)
			if err != nil {
				t.Fatal(err)
			}
			pairs, dropped, err := EncoderPairs(s.Tok, prefs, 20)
			if err != nil || dropped != 0 {
				t.Fatal(err, dropped)
			}
			if first := pairs[0]; first.Chosen[0] != 1 || first.ChosenTypes[0] != 0 || first.ChosenTypes[len(first.ChosenTypes)-1] != 1 || first.ChosenStart != 4 {
				t.Errorf("pair rows %v types %v start %d: want [CLS] p p [SEP] c.. [SEP] with types 0 then 1", first.Chosen, first.ChosenTypes, first.ChosenStart)
			}
			var want []float64
			tensor.NoGrad(func() {
				tensor.Tidy(func() { want = (&Task{M: s.M}).Rewards(preference.Collate(pairs, 0)).Float64s() })
			})
			correct := 0
			for i := range prefs {
				for side := range 2 {
					if w := want[i+side*len(prefs)]; math.Abs(got[2*i+side]-w) > 1e-5 {
						t.Fatalf("pair %d side %d: rl score %.7f, training's reward %.7f", i, side, got[2*i+side], w)
					}
				}
				if got[2*i] > got[2*i+1] {
					correct++
				}
			}
			if acc := float64(correct) / float64(len(prefs)); math.Abs(acc-accs[2]) > 1e-9 {
				t.Errorf("rl score accuracy %g, eval_accuracy %g", acc, accs[2])
			}
			// conversational pairs are refused: an encoder tokenizer has no chat template
			if _, _, err := EncoderPairs(s.Tok, []datasets.Preference{{PromptMessages: []datasets.Message{{Role: "user", Content: "w4"}}, ChosenMessages: []datasets.Message{{Role: "assistant", Content: "w5"}}}}, 20); err == nil || !strings.Contains(err.Error(), "chat template") {
				t.Errorf("conversational pair: %v", err)
			}
		})
	}
}
