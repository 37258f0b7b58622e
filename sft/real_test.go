package sft

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/tokenizer"
)

const sharedData = "../../shared/data"

// realSFT trains a small model from scratch on a real dataset and returns
// the eval losses (the first one before training).
func realSFT(t *testing.T, dataset, format string, corpus []string, packing bool) []float64 {
	t.Helper()
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokDir := filepath.Join(dir, "tok")
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "small.json")
	os.WriteFile(cfgPath, []byte(`{"model_type":"gpt2","n_embd":128,"n_layer":2,"n_head":4,"n_positions":256,"vocab_size":2048}`), 0o644)
	c := DefaultConfig()
	c.Init, c.Tokenizer, c.Dataset, c.DatasetFormat = cfgPath, tokDir, dataset, format
	c.OutputDir = filepath.Join(dir, "out")
	c.MaxSteps, c.PerDeviceTrainBatchSize, c.MaxLength, c.Packing = 40, 16, 128, packing
	c.LearningRate, c.WarmupSteps = 2e-3, 5
	c.EvalRatio, c.EvalStrategy, c.EvalSteps, c.EvalOnStart = 0.05, "steps", 40, true
	c.MaxSamples, c.SaveStrategy, c.NoCache = 2000, "no", true
	c.SkipBadRecords = true // alpaca has records with an empty output
	if _, err := Run(context.Background(), c, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(c.OutputDir, "trainer_state.json"))
	var st struct {
		LogHistory []map[string]float64 `json:"log_history"`
	}
	json.Unmarshal(b, &st)
	var evals []float64
	for _, h := range st.LogHistory {
		if v, ok := h["eval_loss"]; ok {
			evals = append(evals, v)
		}
	}
	return evals
}

func lines(t *testing.T, path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return out
}

// TestRealAlpacaSFT: instruction tuning on Stanford Alpaca (prompt and
// completion from instruction/input/output) lowers eval loss.
func TestRealAlpacaSFT(t *testing.T) {
	path := filepath.Join(sharedData, "alpaca-subset5000", "alpaca_5000.json")
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared/data not present")
	}
	var rows []map[string]string
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	var corpus []string
	for _, r := range rows[:2000] {
		corpus = append(corpus, r["instruction"]+"\n"+r["input"]+"\n"+r["output"])
	}
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	ev := realSFT(t, path, "", corpus, false)
	t.Logf("alpaca eval_loss: %v", ev)
	if len(ev) < 2 || !(ev[len(ev)-1] < 0.9*ev[0]) {
		t.Errorf("alpaca eval_loss %v: want the last below 90%% of the first", ev)
	}
}

// TestRealShakespeareLM: language modelling on tinyshakespeare with
// packing lowers eval loss.
func TestRealShakespeareLM(t *testing.T) {
	path := filepath.Join(sharedData, "tinyshakespeare", "input.txt")
	if _, err := os.Stat(path); err != nil {
		t.Skip("../shared/data not present")
	}
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	ev := realSFT(t, path, "text", lines(t, path, 20000), true)
	t.Logf("tinyshakespeare eval_loss: %v", ev)
	if len(ev) < 2 || !(ev[len(ev)-1] < 0.85*ev[0]) {
		t.Errorf("tinyshakespeare eval_loss %v: want the last below 85%% of the first", ev)
	}
}
