package sft

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/safetensors"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
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

// tinyLlamaBase writes a tiny-llama base (seed 5) for tok into a temp dir.
func tinyLlamaBase(t *testing.T, tok *tokenizer.Tokenizer, tokDir string) string {
	t.Helper()
	base := t.TempDir()
	m, _, err := checkpoint.New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if err := checkpoint.Save(base, m, tok); err != nil {
		t.Fatal(err)
	}
	return base
}

// peftConfig is the LoRA tests' run: rank-8 all-linear adapters on a
// tiny-llama base, 96 arithmetic examples, batch 16, rate 5e-3, a loss
// logged every step, into a temp output dir.
func peftConfig(t *testing.T) Config {
	t.Helper()
	tok, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(96, 0))
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.OutputDir = tinyLlamaBase(t, tok, tokDir), data, t.TempDir()
	cfg.UsePEFT, cfg.LoraR, cfg.LoraTargetModules = true, 8, []string{"all-linear"}
	cfg.LoggingSteps, cfg.LearningRate, cfg.PerDeviceTrainBatchSize = 1, 5e-3, 16
	return cfg
}

// checkResume copies cfg's finished run, keeps only its checkpoint at
// step from, resumes from it and checks that the resumed run logs want's
// losses (the uninterrupted run's) to 1e-6 for every later step.
func checkResume(t *testing.T, cfg Config, want map[int]float64, from int) {
	t.Helper()
	part := t.TempDir()
	if err := os.CopyFS(part, os.DirFS(cfg.OutputDir)); err != nil {
		t.Fatal(err)
	}
	later, _ := filepath.Glob(filepath.Join(part, "checkpoint-*"))
	for _, c := range later {
		if c != filepath.Join(part, fmt.Sprintf("checkpoint-%d", from)) {
			os.RemoveAll(c)
		}
	}
	cfg.OutputDir, cfg.ResumeFromCheckpoint, cfg.OverwriteOutputDir = part, filepath.Join(part, fmt.Sprintf("checkpoint-%d", from)), true
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := logLosses(t, part)
	for s := from + 1; s <= cfg.MaxSteps; s++ {
		if math.Abs(got[s]-want[s]) > 1e-6 {
			t.Errorf("resumed step %d loss %.8f, uninterrupted %.8f", s, got[s], want[s])
		}
	}
}

// TestSFTLoRA: with use_peft, SFT trains LoRA adapters on a frozen base:
// the loss falls, the output folder is a peft adapter (no full weights)
// that loads onto the base and changes its outputs, and a run resumed from
// a mid-run checkpoint logs the uninterrupted run's losses.
func TestSFTLoRA(t *testing.T) {
	tensor.ManualSeed(5)
	cfg := peftConfig(t)
	cfg.MaxSteps, cfg.SaveSteps = 12, 6
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
	checkResume(t, cfg, want, 6)
}

// TestSFTDoRAResume: a DoRA run (use_dora: each adapted row's magnitude
// trained too, lora_dropout 0.05 on) interrupted at its checkpoint-4 and
// resumed from it logs the uninterrupted run's losses to 1e-6; the
// checkpoint holds peft's lora_magnitude_vector tensors beside lora_A and
// lora_B, and the magnitudes moved from their initial row norms (so a
// resume that lost them, or their AdamW moments, would log other losses).
func TestSFTDoRAResume(t *testing.T) {
	cfg := peftConfig(t)
	cfg.UseDoRA, cfg.MaxSteps, cfg.SaveSteps = true, 8, 4
	if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
		t.Fatal(err)
	}
	want := logLosses(t, cfg.OutputDir)
	if len(want) != 8 || !(want[8] < want[1]) {
		t.Fatalf("DoRA SFT losses %v: want 8, falling", want)
	}
	ck, err := safetensors.ReadFile(filepath.Join(cfg.OutputDir, "checkpoint-4", model.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	start, err := safetensors.ReadFile(filepath.Join(cfg.Model, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	mags, moved := 0, 0
	for _, n := range ck.Names() {
		if !strings.HasSuffix(n, ".lora_magnitude_vector") {
			continue
		}
		mags++
		// peft's key base_model.model.<module>.lora_magnitude_vector; the
		// magnitude starts as the base weight's row norms
		w := start.Tensors[strings.TrimPrefix(strings.TrimSuffix(n, ".lora_magnitude_vector"), "base_model.model.")+".weight"]
		got, err := ck.Tensors[n].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := w.Float32s()
		if err != nil {
			t.Fatalf("%s: the base has no weight for it: %v", n, err)
		}
		in := len(rows) / len(got)
		for r := range got {
			var ss float64
			for _, v := range rows[r*in : (r+1)*in] {
				ss += float64(v) * float64(v)
			}
			if math.Abs(float64(got[r])-math.Sqrt(ss)) > 1e-4 {
				moved++
				break
			}
		}
	}
	if mags == 0 || moved == 0 {
		t.Fatalf("checkpoint-4 has %d lora_magnitude_vector tensors, %d moved from the base's row norms: want both > 0", mags, moved)
	}
	checkResume(t, cfg, want, 4)
}

// TestSFTQLoRA: adapters train on a 4-bit NF4 base (double-quantised): the
// loss falls, the output is a peft adapter, and it loads onto the float
// base (where peft would load it too).
func TestSFTQLoRA(t *testing.T) {
	cfg := peftConfig(t)
	cfg.LoadIn4bit, cfg.UseBnbNestedQuant = true, true
	cfg.MaxSteps, cfg.SaveStrategy = 12, "no"
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
