package cpo

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

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// hhPairs is Anthropic HH-RLHF harmless-base (test split, first 1,500
// rows) as kept in the shared data folder; tests using it skip without it.
const hhPairs = "../../shared/data/hh-rlhf-harmless-base/pairs.jsonl"

// TestHHRealData: CPO (sigmoid, cpo_alpha 1) from a fresh 2-layer GPT-2 of
// width 64 on the first 320 HH-RLHF harmless-base pairs (implicit prompts:
// the shared prefix up to the last "Assistant:"; 145 fit max_length 128
// with a 512-token BPE), 40 steps, a few seconds. Evaluated before and
// after on the first 64 of them (29 kept), training pairs: the loss falls
// and the reward accuracy (chosen log-prob above rejected) rises. (On
// held-out pairs 320-420 a run this short leaves the accuracy unchanged.)
//
//	go test ./cpo/ -run TestHHRealData -v
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
	for sc.Scan() && len(rows) < 320 {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) < 320 {
		t.Fatalf("%s: %d rows, want at least 320", hhPairs, len(rows))
	}
	began := time.Now()
	dir := t.TempDir()
	data := filepath.Join(dir, "pairs")
	os.MkdirAll(data, 0o755)
	preftest.WriteJSONL(t, filepath.Join(data, "train.jsonl"), rows)
	preftest.WriteJSONL(t, filepath.Join(data, "test.jsonl"), rows[:64])
	var corpus []string
	for _, r := range rows {
		corpus = append(corpus, r["chosen"].(string), r["rejected"].(string))
	}
	tokDir := filepath.Join(dir, "tok")
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 512, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(tokDir); err != nil {
		t.Fatal(err)
	}
	initCfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(initCfg, []byte(`{"model_type":"gpt2","n_embd":64,"n_layer":2,"n_head":4,"n_positions":128,"vocab_size":512,"embd_pdrop":0.0,"attn_pdrop":0.0,"resid_pdrop":0.0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	baseDir := filepath.Join(dir, "base")
	if err := tensor.TidyErr(func() error {
		m, tok, err := checkpoint.New(initCfg, tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
		if err != nil {
			return err
		}
		defer m.Free()
		return checkpoint.Save(baseDir, m, tok)
	}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model = baseDir
	cfg.Dataset = data
	cfg.OutputDir = filepath.Join(dir, "cpo-out")
	cfg.MaxLength = 128
	cfg.PerDeviceTrainBatchSize = 8
	cfg.PerDeviceEvalBatchSize = 32
	cfg.MaxSteps = 40
	cfg.LearningRate = 3e-3
	cfg.LRSchedulerType = "constant"
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 40
	cfg.EvalOnStart = true
	cfg.SaveStrategy = "no"
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	losses, accs := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/accuracies")
	t.Logf("cpo: %v; %d train / %d eval pairs; eval_loss %v, eval_rewards/accuracies %v, eval_nll_loss %v, eval_rewards/margins %v",
		time.Since(began), res.TrainPairs, res.EvalPairs, losses, accs, preftest.Series(h, "eval_nll_loss"), preftest.Series(h, "eval_rewards/margins"))
	if len(losses) != 2 || len(accs) != 2 {
		t.Fatalf("eval_loss logged %d times, want 2 (before and after)", len(losses))
	}
	if !(losses[1] < losses[0]) {
		t.Errorf("eval_loss went %v: it did not fall", losses)
	}
	if !(accs[1] > accs[0]) {
		t.Errorf("eval_rewards/accuracies went %v: it did not rise", accs)
	}
}
