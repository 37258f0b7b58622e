package dpo

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// hhPairs is Anthropic HH-RLHF harmless-base (test split, first 1,500
// rows) as kept in the shared data folder; tests using it skip without it.
const hhPairs = "../../shared/data/hh-rlhf-harmless-base/pairs.jsonl"

// TestHHRealData: a tiny model, briefly SFT'd on the chosen dialogues of
// HH-RLHF harmless-base, then trained with DPO on 1,200 pairs, ranks the
// chosen above the rejected on more than half of 300 held-out pairs
// (eval_rewards/accuracies; 0 before training, where rewards tie).
//
//	go test ./dpo/ -run TestHHRealData -v
func TestHHRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	f, err := os.Open(hhPairs)
	if err != nil {
		t.Skipf("HH-RLHF pairs not available: %v", err)
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) < 1500 {
		t.Fatalf("%s: %d rows, want 1500", hhPairs, len(rows))
	}
	began := time.Now()
	dir := t.TempDir()
	data, sftData := filepath.Join(dir, "pairs"), filepath.Join(dir, "sft")
	os.MkdirAll(data, 0o755)
	os.MkdirAll(sftData, 0o755)
	preftest.WriteJSONL(t, filepath.Join(data, "train.jsonl"), rows[:1200])
	preftest.WriteJSONL(t, filepath.Join(data, "test.jsonl"), rows[1300:1500])
	var texts []map[string]any
	var corpus []string
	for _, r := range rows[:1200] {
		texts = append(texts, map[string]any{"text": r["chosen"]})
		corpus = append(corpus, r["chosen"].(string))
	}
	preftest.WriteJSONL(t, filepath.Join(sftData, "train.jsonl"), texts)

	tokDir := filepath.Join(dir, "tok")
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("tokenizer: %v", time.Since(began))

	// A 2-layer GPT-2 of width 128: small enough for a minute on a CPU.
	initCfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(initCfg, []byte(`{"model_type":"gpt2","n_embd":128,"n_layer":2,"n_head":4,"n_positions":256,"vocab_size":1024}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sc2 := sft.DefaultConfig()
	sc2.Init = initCfg
	sc2.Tokenizer = tokDir
	sc2.Dataset = sftData
	sc2.OutputDir = filepath.Join(dir, "sft-out")
	sc2.MaxLength = 128
	sc2.MaxSteps = 30
	sc2.PerDeviceTrainBatchSize = 16
	sc2.LearningRate = 2e-3
	sc2.WarmupSteps = 4
	sc2.SaveStrategy = "no"
	sc2.NoCache = true
	if _, err := sft.Run(context.Background(), sc2, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("sft: %v", time.Since(began))

	cfg := DefaultConfig()
	cfg.Model = sc2.OutputDir
	cfg.Dataset = data
	cfg.OutputDir = filepath.Join(dir, "dpo-out")
	cfg.MaxLength = 128
	cfg.TruncationMode = preference.KeepEnd
	cfg.PerDeviceTrainBatchSize = 8
	cfg.PerDeviceEvalBatchSize = 32
	cfg.MaxSteps = 60
	cfg.LearningRate = 5e-4
	cfg.LRSchedulerType = "constant"
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 60
	cfg.SaveStrategy = "no"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	accs := preftest.Series(h, "eval_rewards/accuracies")
	t.Logf("dpo: %v; %d train / %d eval pairs; eval_rewards/accuracies %v, eval_loss %v, eval_rewards/margins %v",
		time.Since(began), res.TrainPairs, res.EvalPairs, accs, preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/margins"))
	if acc := accs[len(accs)-1]; !(acc > 0.5) {
		t.Errorf("held-out eval_rewards/accuracies = %g, want > 0.5", acc)
	}
}
