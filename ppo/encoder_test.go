package ppo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// TestPPOEncoderRewardModel: a BERT reward model that shares the policy's
// tokenizer scores PPO's rollouts (as GRPO's and RLOO's, shared/rollout:
// the text re-encoded with the tokenizer's pair template, read at the
// first token, with the padding mask); the value model then starts
// from the SFT model (a value model reads every token causally), and an
// encoder given as value_model_path is refused by name.
func TestPPOEncoderRewardModel(t *testing.T) {
	sftDir, data := setup(t)
	root := t.TempDir()
	cfgPath := filepath.Join(root, "bert.json")
	os.WriteFile(cfgPath, []byte(`{"model_type":"bert","architectures":["BertForSequenceClassification"],"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":64,"max_position_embeddings":64,"vocab_size":320,"num_labels":1}`), 0o644)
	m, tok, err := checkpoint.New(cfgPath, sftDir, model.ScoreHead, tensor.Float32, tensor.CPU, 3)
	if err != nil {
		t.Fatal(err)
	}
	rm := filepath.Join(root, "rm")
	err = checkpoint.Save(rm, m, tok)
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	cfg := ppoConfig(sftDir, data, filepath.Join(root, "out"))
	cfg.Reward = rm
	cfg.TotalEpisodes = 32 * 2
	cfg.SaveStrategy = "no"
	cfg.NumSampleGenerations = 0
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	s := scores(t, cfg.OutputDir)
	if len(s) == 0 {
		t.Fatal("no objective/scores logged")
	}
	for _, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("scores %v", s)
		}
	}
	cfg.OutputDir = filepath.Join(root, "out2")
	cfg.ValueModel = rm
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "value_model_path") || !strings.Contains(err.Error(), "encoder") {
		t.Errorf("an encoder value model: %v, want a refusal naming value_model_path", err)
	}
}
