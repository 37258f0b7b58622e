package sft

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/textmetrics"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func TestGenExamples(t *testing.T) {
	xs := []Example{
		// prompt 1 2, completion 3 4
		{IDs: []int32{1, 2, 3, 4}, Loss: []bool{false, false, true, true}},
		// two assistant turns: the last is the reference, the first turn
		// belongs to the prompt
		{IDs: []int32{1, 2, 3, 4, 5, 6, 7}, Loss: []bool{false, true, true, false, true, true, false}},
	}
	got, err := GenExamples(xs, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []GenExample{{Prompt: []int{1, 2}, Label: []int{3, 4}}, {Prompt: []int{1, 2, 3, 4}, Label: []int{5, 6}}}
	for i := range want {
		if !slices.Equal(got[i].Prompt, want[i].Prompt) || !slices.Equal(got[i].Label, want[i].Label) {
			t.Errorf("example %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// language-modelling text: every token a target, no prompt
	_, err = GenExamples([]Example{{IDs: []int32{1, 2}, Loss: []bool{true, true}}}, "test")
	if err == nil || !strings.Contains(err.Error(), "prompt-completion or conversational") {
		t.Errorf("text example: err = %v, want a prompt-completion error", err)
	}
}

func TestDoPredictNeedsGenerate(t *testing.T) {
	c := DefaultConfig()
	c.Init, c.Dataset, c.DoPredict = "tiny", "x.jsonl", true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "predict_with_generate") {
		t.Errorf("do_predict without predict_with_generate: err = %v", err)
	}
}

// TestPredictWithGenerateAlpaca: a tiny model trained a few steps on
// LLaMA-Factory's alpaca_en_demo, evaluated by generation: each eval logs
// eval_rouge-1/2/l and eval_bleu-4, do_predict writes
// generated_predictions.jsonl (prompt, predict, label per held-out
// example, the label the record's output as far as max_length keeps it) and predict_results.json, whose
// scores are the means of textmetrics.Similarity over the file's rows and,
// with greedy decoding, equal the last evaluation's.
func TestPredictWithGenerateAlpaca(t *testing.T) {
	path := filepath.Join(sharedData, "llamafactory-demo-data", "alpaca_en_demo.json")
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared/data not present")
	}
	var rows []map[string]string
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	var corpus []string
	var outputs []string
	for _, r := range rows {
		corpus = append(corpus, r["instruction"]+"\n"+r["input"]+"\n"+r["output"])
		outputs = append(outputs, r["output"])
	}
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	tokDir := filepath.Join(dir, "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "small.json")
	os.WriteFile(cfgPath, []byte(`{"model_type":"gpt2","n_embd":64,"n_layer":2,"n_head":4,"n_positions":256,"vocab_size":1024}`), 0o644)
	c := DefaultConfig()
	c.Init, c.Tokenizer, c.Dataset = cfgPath, tokDir, path
	c.OutputDir = filepath.Join(dir, "out")
	c.MaxSteps, c.PerDeviceTrainBatchSize, c.PerDeviceEvalBatchSize, c.MaxLength = 6, 8, 4, 192
	c.LearningRate = 3e-3
	c.EvalRatio, c.EvalStrategy, c.EvalSteps = 0.008, "steps", 6 // 8 held-out examples, evaluated at the end
	c.MaxSamples, c.SaveStrategy, c.NoCache = 200, "no", true
	c.PredictWithGenerate, c.DoPredict, c.MaxNewTokens = true, true, 12
	res, err := Run(context.Background(), c, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(c.OutputDir, PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var scores []textmetrics.Scores
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		var p map[string]string
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if len(p) != 3 || p["prompt"] == "" {
			t.Errorf("row %q: want prompt, predict and label", sc.Text())
		}
		// the label is the record's output, cut where max_length cut the
		// example
		if !slices.ContainsFunc(outputs, func(o string) bool { return p["label"] != "" && strings.HasPrefix(o, p["label"]) }) {
			t.Errorf("label %q is no record's output (or its start)", p["label"])
		}
		s, err := textmetrics.Similarity(p["predict"], p["label"])
		if err != nil {
			t.Fatal(err)
		}
		scores = append(scores, s)
	}
	if len(scores) != 8 {
		t.Fatalf("%d predictions, want the 8 held-out examples", len(scores))
	}
	mean := textmetrics.Mean(scores)

	var written map[string]float64
	b, _ = os.ReadFile(filepath.Join(c.OutputDir, PredictResultsFile))
	if err := json.Unmarshal(b, &written); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(c.OutputDir, "trainer_state.json"))
	var st struct {
		LogHistory []map[string]float64 `json:"log_history"`
	}
	json.Unmarshal(b, &st)
	var last map[string]float64
	for _, h := range st.LogHistory {
		if _, ok := h["eval_rouge-1"]; ok {
			last = h
		}
	}
	if last == nil {
		t.Fatalf("no eval_rouge-1 in the log history: %v", st.LogHistory)
	}
	for i, k := range textmetrics.Keys {
		want := mean.Values()[i]
		if got := written["predict_"+k]; math.Abs(got-want) > 1e-9 || math.Abs(res.Predict["predict_"+k]-want) > 1e-9 {
			t.Errorf("predict_%s = %v (file) / %v (result), want %v", k, got, res.Predict["predict_"+k], want)
		}
		if got := last["eval_"+k]; math.Abs(got-want) > 1e-9 {
			t.Errorf("eval_%s = %v, want %v (greedy: the same as predict)", k, got, want)
		}
	}
	t.Logf("predict scores %+v", written)
	if os.Getenv("RL_SHOW") != "" {
		b, _ := os.ReadFile(filepath.Join(c.OutputDir, PredictionsFile))
		t.Log(string(b))
	}
}

func TestScoreMapKeys(t *testing.T) {
	m := scoreMap(textmetrics.Scores{Rouge1: 1, Rouge2: 2, RougeL: 3, Bleu4: 4}, "predict_")
	want := map[string]float64{"predict_rouge-1": 1, "predict_rouge-2": 2, "predict_rouge-l": 3, "predict_bleu-4": 4}
	if len(m) != len(want) {
		t.Fatalf("scoreMap = %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("scoreMap[%s] = %v, want %v", k, m[k], v)
		}
	}
}

// TestGenExamplesConversation: for a conversation (Llama 3.1's template),
// the reference is the last assistant turn and the prompt everything up to
// its generation prompt, the earlier turns included.
func TestGenExamplesConversation(t *testing.T) {
	e := realEncoder(t, "llama3_1")
	e.AssistantOnlyLoss = true
	d := &datasets.Dataset{Name: "test"}
	d.Records = append(d.Records, datasets.Record{"messages": []any{
		map[string]any{"role": "user", "content": "What is 2+2?"},
		map[string]any{"role": "assistant", "content": "4"},
		map[string]any{"role": "user", "content": "And 3+3?"},
		map[string]any{"role": "assistant", "content": "6"},
	}})
	d.Sources = append(d.Sources, datasets.Source{File: "x.jsonl", Line: 1})
	xs, err := e.EncodeDataset(d, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	gs, err := GenExamples(xs, "test")
	if err != nil {
		t.Fatal(err)
	}
	prompt, _ := e.Tok.Decode(gs[0].Prompt, false)
	label, _ := e.Tok.Decode(gs[0].Label, true)
	if label != "6" {
		t.Errorf("label %q, want \"6\"", label)
	}
	if !strings.Contains(prompt, "What is 2+2?") || !strings.Contains(prompt, "4<|eot_id|>") || !strings.HasSuffix(prompt, "And 3+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") {
		t.Errorf("prompt %q: want the whole conversation up to the last assistant turn's header", prompt)
	}
}
