package kto

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// ktoDemo is LLaMA-Factory's KTO demo data (300 ShareGPT-style rows:
// "messages" with user/assistant turns and a boolean "label", 150 of each
// class) as kept in the shared data folder; the test skips without it.
const ktoDemo = "../../shared/data/llamafactory-demo-data/kto_en_demo.json"

// TestKTODemoRealData: a tiny GPT-2 with a tokenizer trained on the demo
// texts, briefly SFT'd on the desirable conversations of 240 rows, then
// trained with KTO on those 240 rows (the messages + label layout, ChatML
// rendering, multi-turn prompts) for 20 steps: the training loss falls
// and rewards/margins rises; the held-out 60 rows' figures are logged.
//
//	go test ./kto/ -run TestKTODemoRealData -v
func TestKTODemoRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b, err := os.ReadFile(ktoDemo)
	if err != nil {
		t.Skipf("LLaMA-Factory KTO demo data not available: %v", err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 300 {
		t.Fatalf("%s: %d rows, want 300", ktoDemo, len(rows))
	}
	began := time.Now()
	dir := t.TempDir()
	data, sftData := filepath.Join(dir, "kto"), filepath.Join(dir, "sft")
	os.MkdirAll(data, 0o755)
	os.MkdirAll(sftData, 0o755)
	preftest.WriteJSONL(t, filepath.Join(data, "train.jsonl"), rows[:240])
	preftest.WriteJSONL(t, filepath.Join(data, "test.jsonl"), rows[240:])
	var corpus []string
	var convs []map[string]any
	for _, r := range rows[:240] {
		for _, m := range r["messages"].([]any) {
			corpus = append(corpus, m.(map[string]any)["content"].(string))
		}
		if r["label"] == true {
			convs = append(convs, map[string]any{"messages": r["messages"]})
		}
	}
	preftest.WriteJSONL(t, filepath.Join(sftData, "train.jsonl"), convs)
	tokDir := filepath.Join(dir, "tok")
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 1024, SpecialTokens: []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	initCfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(initCfg, []byte(`{"model_type":"gpt2","n_embd":64,"n_layer":2,"n_head":4,"n_positions":256,"vocab_size":1024}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := sft.DefaultConfig()
	sc.Init = initCfg
	sc.Tokenizer = tokDir
	sc.Dataset = sftData
	sc.OutputDir = filepath.Join(dir, "sft-out")
	sc.MaxLength = 128
	sc.MaxSteps = 20
	sc.PerDeviceTrainBatchSize = 16
	sc.LearningRate = 3e-3
	sc.WarmupSteps = 2
	sc.SaveStrategy = "no"
	sc.NoCache = true
	if _, err := sft.Run(context.Background(), sc, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("tokenizer + sft: %v", time.Since(began))

	cfg := DefaultConfig()
	cfg.Model = sc.OutputDir
	cfg.Dataset = data
	cfg.OutputDir = filepath.Join(dir, "kto-out")
	cfg.MaxLength = 128 // long prompts are dropped (and counted), as TRL drops them
	cfg.PerDeviceTrainBatchSize = 8
	cfg.PerDeviceEvalBatchSize = 30
	cfg.MaxSteps = 20
	cfg.LearningRate = 1e-3
	cfg.LRSchedulerType = "constant"
	cfg.LoggingSteps = 1
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 20
	cfg.EvalOnStart = true
	cfg.SaveStrategy = "no"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	loss, margin := preftest.Series(h, "loss"), preftest.Series(h, "rewards/margins")
	el, em := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/margins")
	t.Logf("kto: %v; %d train rows (%d desirable, %d undesirable, %d dropped for max_length), %d eval rows", time.Since(began), res.TrainRows, res.Desirable, res.Undesirable, res.Dropped, res.EvalRows)
	t.Logf("train loss %.4f -> %.4f, rewards/margins %.4f -> %.4f (means of the first and last 5 steps), kl %v",
		meanOf(loss[:5]), meanOf(loss[len(loss)-5:]), meanOf(margin[:5]), meanOf(margin[len(margin)-5:]), preftest.Series(h, "kl")[len(loss)-1])
	t.Logf("eval_loss %v, eval_rewards/margins %v", el, em)
	if !(meanOf(loss[len(loss)-5:]) < meanOf(loss[:5])) {
		t.Errorf("training loss did not fall: %v", loss)
	}
	if !(meanOf(margin[len(margin)-5:]) > meanOf(margin[:5])) {
		t.Errorf("rewards/margins did not rise: %v", margin)
	}
}
