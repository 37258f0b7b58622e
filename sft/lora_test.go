package sft

import (
	"context"
	"encoding/json"
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

func logLosses(t *testing.T, dir string) map[int]float64 {
	t.Helper()
	var st struct {
		LogHistory []map[string]float64 `json:"log_history"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &st)
	out := map[int]float64{}
	for _, h := range st.LogHistory {
		if l, ok := h["loss"]; ok {
			out[int(h["step"])] = l
		}
	}
	return out
}

// TestSFTLoRA: with use_peft, SFT trains LoRA adapters on a frozen base:
// the loss falls, the output folder is a peft adapter (no full weights)
// that loads onto the base and changes its outputs, and a run resumed from
// a mid-run checkpoint logs the uninterrupted run's losses.
func TestSFTLoRA(t *testing.T) {
	tok, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(96, 0))
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	tensor.ManualSeed(5)
	base := t.TempDir()
	m, _, err := checkpoint.New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Save(base, m, tok); err != nil {
		t.Fatal(err)
	}
	m.Free()

	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.OutputDir = base, data, t.TempDir()
	cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules = true, 8, []string{"all-linear"}
	cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveSteps, cfg.LearningRate, cfg.PerDeviceTrainBatchSize = 12, 1, 6, 5e-3, 16
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	want := logLosses(t, cfg.OutputDir)
	if len(want) != 12 || !(want[12] < 0.8*want[1]) {
		t.Errorf("LoRA SFT losses %v: want 12, the last below 0.8x the first", want)
	}
	for _, f := range []string{model.AdapterConfigFile, model.AdapterWeightsFile, "tokenizer.json", "checkpoint-6/" + model.AdapterWeightsFile} {
		if _, err := os.Stat(filepath.Join(cfg.OutputDir, f)); err != nil {
			t.Errorf("output lacks %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.OutputDir, "model.safetensors")); err == nil {
		t.Error("a LoRA run wrote full weights")
	}
	adapted, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load the adapter output: %v", err)
	}
	defer adapted.Free()
	if !adapted.HasAdapters() || adapted.NumTrainable() >= adapted.NumParams()/4 {
		t.Errorf("adapter output: adapters %v, %d trainable of %d", adapted.HasAdapters(), adapted.NumTrainable(), adapted.NumParams())
	}
	tensor.Tidy(func() {
		in := &model.Input{IDs: tensor.FromInt64s([]int64{5, 6, 7, 8}, 1, 4)}
		a := adapted.Forward(in).Float32s()
		in.DisableAdapters = true
		b := adapted.Forward(in).Float32s()
		d := 0.0
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		}
		if d < 1e-3 {
			t.Errorf("the trained adapter changes the logits by %.3g only", d)
		}
	})

	// resume from checkpoint-6 in a copy of the run
	part := t.TempDir()
	if err := os.CopyFS(part, os.DirFS(cfg.OutputDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(part, "checkpoint-12"))
	cfg2 := cfg
	cfg2.OutputDir, cfg2.ResumeFromCheckpoint, cfg2.OverwriteOutputDir = part, filepath.Join(part, "checkpoint-6"), true
	if _, err := Run(context.Background(), cfg2, zerolog.Nop(), nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := logLosses(t, part)
	for s := 7; s <= 12; s++ {
		if math.Abs(got[s]-want[s]) > 1e-6 {
			t.Errorf("resumed step %d loss %.8f, uninterrupted %.8f", s, got[s], want[s])
		}
	}
}

// TestSFTQLoRA: adapters train on a 4-bit NF4 base (double-quantised): the
// loss falls, the output is a peft adapter, and it loads onto the float
// base (where peft would load it too).
func TestSFTQLoRA(t *testing.T) {
	tok, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(96, 0))
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	base := t.TempDir()
	m, _, err := checkpoint.New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.Save(base, m, tok); err != nil {
		t.Fatal(err)
	}
	m.Free()
	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.OutputDir = base, data, t.TempDir()
	cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules = true, 8, []string{"all-linear"}
	cfg.LoadIn4bit, cfg.UseBnbNestedQuant = true, true
	cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveStrategy, cfg.LearningRate, cfg.PerDeviceTrainBatchSize = 12, 1, "no", 5e-3, 16
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	l := logLosses(t, cfg.OutputDir)
	t.Logf("QLoRA losses %v", l)
	if len(l) != 12 || !(l[12] < 0.8*l[1]) {
		t.Errorf("QLoRA SFT losses %v: want 12, the last below 0.8x the first", l)
	}
	a, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load the QLoRA adapter onto the float base: %v", err)
	}
	a.Free()
	cfg.OutputDir, cfg.UsePEFT = t.TempDir(), false
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), "use_peft") {
		t.Errorf("load_in_4bit without use_peft: %v, want a refusal naming use_peft", err)
	}
}

// TestSFTGradientCheckpointing: gradient_checkpointing changes memory, not
// the training: the losses equal a plain run's step for step (presets
// train without dropout), for full fine-tuning and for LoRA.
func TestSFTGradientCheckpointing(t *testing.T) {
	_, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(64, 0))
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	var runs [2]map[int]float64
	for i, gc := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Init, cfg.Tokenizer, cfg.Dataset, cfg.OutputDir = "tiny-llama", tokDir, data, t.TempDir()
		cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveStrategy, cfg.LearningRate, cfg.PerDeviceTrainBatchSize = 6, 1, "no", 2e-3, 16
		cfg.GradientAccumulationSteps = 2
		cfg.GradientCheckpointing = gc
		if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
			t.Fatal(err)
		}
		runs[i] = logLosses(t, cfg.OutputDir)
	}
	for s := 1; s <= 6; s++ {
		if math.Abs(runs[0][s]-runs[1][s]) > 1e-5*math.Max(1, runs[0][s]) {
			t.Errorf("step %d: loss %.7f plain, %.7f with gradient checkpointing", s, runs[0][s], runs[1][s])
		}
	}
	if len(runs[1]) != 6 {
		t.Errorf("logged %v", runs[1])
	}
}
