package sft

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

func init() { tensor.SetNumThreads(0) }

// arithmetic returns prompt-completion pairs "a+b=" -> "c".
func arithmetic(n int, seed int) []map[string]string {
	var out []map[string]string
	for i := 0; i < n; i++ {
		k := (i*37 + seed*11) % 100
		a, b := k/10, k%10
		out = append(out, map[string]string{"prompt": fmt.Sprintf("%d+%d=", a, b), "completion": fmt.Sprint(a + b)})
	}
	return out
}

func testTokenizer(t *testing.T) (*tokenizer.Tokenizer, string) {
	t.Helper()
	corpus := []string{}
	for _, r := range arithmetic(100, 1) {
		corpus = append(corpus, r["prompt"]+r["completion"])
	}
	corpus = append(corpus, "the quick brown fox jumps over the lazy dog")
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return tok, dir
}

func writeJSONL(t *testing.T, path string, rows []map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range rows {
		enc.Encode(r)
	}
}

// TestLabelsMaskPromptAndPadding checks token by token that targets are -100
// exactly on prompt tokens and padding, and the next token elsewhere.
func TestLabelsMaskPromptAndPadding(t *testing.T) {
	tok, _ := testTokenizer(t)
	enc := &Encoder{Tok: tok, MaxLength: 64, CompletionOnly: true, EOS: tok.EOS()}
	p, _ := tok.Encode("3+4=", true)
	c, _ := tok.Encode("7", false)
	x, err := enc.PromptCompletion("3+4=", "7")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := append(append(toI32(p), toI32(c)...), int32(tok.EOS()))
	if !slices.Equal(x.IDs, wantIDs) {
		t.Fatalf("ids = %v, want %v", x.IDs, wantIDs)
	}
	long, _ := enc.PromptCompletion("1+1=", "2 and more words here")
	b := Collate(Rows([]Example{x, long}, false, 64), 0)
	T := b.T
	if T != len(long.IDs) {
		t.Fatalf("T = %d, want %d", T, len(long.IDs))
	}
	// Row 0: position t predicts token t+1; targets exist only where token
	// t+1 is a completion token or eos.
	for tpos := 0; tpos < T; tpos++ {
		want := int64(IgnoreIndex)
		if tpos+1 < len(x.IDs) && tpos+1 >= len(p) {
			want = int64(x.IDs[tpos+1])
		}
		if got := b.Targets[tpos]; got != want {
			t.Errorf("row 0 position %d: target %d, want %d", tpos, got, want)
		}
		if tpos >= len(x.IDs) && b.IDs[tpos] != 0 {
			t.Errorf("row 0 position %d: pad id %d, want 0", tpos, b.IDs[tpos])
		}
	}
	if b.NumTokens() != len(x.IDs)+len(long.IDs) {
		t.Errorf("NumTokens = %d, want %d", b.NumTokens(), len(x.IDs)+len(long.IDs))
	}
	// completion_only_loss=false trains on the prompt too.
	enc.CompletionOnly = false
	all, _ := enc.PromptCompletion("3+4=", "7")
	for i, l := range all.Loss {
		if !l {
			t.Errorf("completion_only_loss=false: token %d not trained", i)
		}
	}
}

// TestPackingNoCrossAttention: logits of examples packed into one row equal
// the logits of each example run alone.
func TestPackingNoCrossAttention(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama"} {
		tensor.ManualSeed(1)
		cfg, _ := model.Preset(preset, 50)
		cfg.NumLayers = 2
		m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
		if err != nil {
			t.Fatal(err)
		}
		xs := []Example{
			{IDs: []int32{5, 6, 7, 8, 9}, Loss: []bool{true, true, true, true, true}},
			{IDs: []int32{10, 11, 12}, Loss: []bool{false, true, true}},
			{IDs: []int32{13, 14, 15, 16}, Loss: []bool{true, true, true, true}},
		}
		rows := Rows(xs, true, 12)
		if len(rows) != 1 {
			t.Fatalf("packed into %d rows, want 1", len(rows))
		}
		b := Collate(rows, 0)
		tensor.Tidy(func() {
			in := &model.Input{IDs: tensor.FromInt64s(b.IDs, 1, int64(b.T)), SegmentIDs: tensor.FromInt64s(b.Segments, 1, int64(b.T)), PositionIDs: tensor.FromInt64s(b.Positions, 1, int64(b.T))}
			packed := m.Forward(in).Float32s()
			V := cfg.VocabSize
			off := 0
			for s := 0; s < len(rows[0].IDs); {
				seg := rows[0].Segments[s]
				n := 0
				for s+n < len(rows[0].IDs) && rows[0].Segments[s+n] == seg {
					n++
				}
				ids := make([]int64, n)
				for i := range ids {
					ids[i] = int64(rows[0].IDs[s+i])
				}
				alone := m.Forward(&model.Input{IDs: tensor.FromInt64s(ids, 1, int64(n))}).Float32s()
				for i := 0; i < n*V; i++ {
					if d := math.Abs(float64(alone[i] - packed[(off)*V+i])); d > 1e-4 {
						t.Fatalf("%s segment %d: packed logit differs from alone by %g", preset, seg, d)
					}
				}
				off += n
				s += n
			}
			// the last token of a segment never predicts the next segment's first
			for k := 0; k+1 < b.T; k++ {
				if b.Segments[k] != b.Segments[k+1] && b.Targets[k] != IgnoreIndex {
					t.Errorf("%s: target across a segment boundary at %d", preset, k)
				}
			}
		})
		m.Free()
	}
}

// TestSFTLowersEvalLoss trains a tiny model from scratch on arithmetic and
// checks that eval loss falls, then that the output directory is a
// checkpoint the next stage loads.
func TestSFTLowersEvalLoss(t *testing.T) { sftLowersEvalLoss(t, false) }

// TestSFTBF16 is the same run with bf16 (autocast to bfloat16 with float32
// master weights): it must learn as well, and save float32 weights.
func TestSFTBF16(t *testing.T) { sftLowersEvalLoss(t, true) }

func sftLowersEvalLoss(t *testing.T, bf16 bool) {
	_, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(200, 0))
	writeJSONL(t, filepath.Join(data, "test.jsonl"), arithmetic(40, 3))
	out := t.TempDir()
	cfg := DefaultConfig()
	cfg.Init = "tiny"
	cfg.Tokenizer = tokDir
	cfg.Dataset = data
	cfg.OutputDir = out
	cfg.MaxSteps = 40
	cfg.PerDeviceTrainBatchSize = 16
	cfg.LearningRate = 2e-3
	cfg.WarmupSteps = 4
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 10
	cfg.EvalOnStart = true
	cfg.SaveSteps = 20
	cfg.NoCache = true
	cfg.BF16 = bf16
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var evals []float64
	b, _ := os.ReadFile(filepath.Join(out, "trainer_state.json"))
	var st struct {
		LogHistory []map[string]float64 `json:"log_history"`
	}
	json.Unmarshal(b, &st)
	for _, h := range st.LogHistory {
		if v, ok := h["eval_loss"]; ok {
			evals = append(evals, v)
		}
	}
	if len(evals) != 5 {
		t.Fatalf("eval_loss logged %d times, want 5 (start + 4)", len(evals))
	}
	t.Logf("eval_loss: %v", evals)
	if !(evals[len(evals)-1] < 0.5*evals[0]) {
		t.Errorf("eval_loss went %v; want the last below half the first", evals)
	}
	if res.LastMetrics["eval_perplexity"] <= 1 || res.LastMetrics["mean_token_accuracy"] <= 0 {
		t.Errorf("metrics missing: %v", res.LastMetrics)
	}
	// The output is the next stage's input.
	m, tok, err := checkpoint.Load(out, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load SFT output: %v", err)
	}
	if dt := m.Params()[0].T.DType(); dt != tensor.Float32 {
		t.Errorf("saved weights are %v, want float32 (master weights)", dt)
	}
	m.Free()
	_ = tok
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "plots/loss.png", "checkpoint-20/optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output lacks %s", f)
		}
	}
}

func toI32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TestGradientAccumulationTokenMean: under gradient accumulation the step's
// loss is the token mean of the whole accumulated step (transformers'
// num_items_in_batch), so 2 micro-batches of 2 log the same loss and
// gradient norm at step 1 as one batch of 4, with completions of very
// different lengths (a mean of micro-batch means would differ).
func TestGradientAccumulationTokenMean(t *testing.T) {
	_, tokDir := testTokenizer(t)
	data := t.TempDir()
	var rows []map[string]string
	for i := range 8 {
		c := "1"
		if i%2 == 0 {
			c = strings.Repeat(" the quick brown fox", 1+i)
		}
		rows = append(rows, map[string]string{"prompt": fmt.Sprintf("%d+%d=", i, i), "completion": c})
	}
	writeJSONL(t, filepath.Join(data, "train.jsonl"), rows)
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	run := func(bs, gas int) map[string]float64 {
		cfg := DefaultConfig()
		cfg.Init, cfg.Tokenizer, cfg.Dataset, cfg.OutputDir = "tiny", tokDir, data, t.TempDir()
		cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveStrategy = 1, 1, "no"
		cfg.PerDeviceTrainBatchSize, cfg.GradientAccumulationSteps = bs, gas
		res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.LastMetrics
	}
	one, two := run(4, 1), run(2, 2)
	for _, k := range []string{"loss", "grad_norm"} {
		if math.Abs(one[k]-two[k]) > 1e-5*math.Abs(one[k]) {
			t.Errorf("%s: %g with one batch of 4, %g with 2 x 2 accumulated", k, one[k], two[k])
		}
	}
}

// TestSFTFromEveryPreset: each family's tiny preset trains: the loss of a
// few SFT steps from scratch falls (Qwen3's q/k norms and head_dim apart
// from hidden/heads included).
func TestSFTFromEveryPreset(t *testing.T) {
	_, tokDir := testTokenizer(t)
	data := t.TempDir()
	writeJSONL(t, filepath.Join(data, "train.jsonl"), arithmetic(64, 0))
	t.Setenv("RL_CACHE_DIR", t.TempDir())
	for _, preset := range []string{"tiny", "tiny-llama", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3", "tiny-mistral", "tiny-qwen2"} {
		cfg := DefaultConfig()
		cfg.Init, cfg.Tokenizer, cfg.Dataset, cfg.OutputDir = preset, tokDir, data, t.TempDir()
		cfg.MaxSteps, cfg.LoggingSteps, cfg.SaveStrategy, cfg.LearningRate, cfg.PerDeviceTrainBatchSize = 12, 1, "no", 2e-3, 16
		if _, err := Run(context.Background(), cfg, zerolog.Nop(), nil); err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		var st struct {
			LogHistory []map[string]float64 `json:"log_history"`
		}
		b, _ := os.ReadFile(filepath.Join(cfg.OutputDir, "trainer_state.json"))
		json.Unmarshal(b, &st)
		var losses []float64
		for _, h := range st.LogHistory {
			if l, ok := h["loss"]; ok {
				losses = append(losses, l)
			}
		}
		if len(losses) < 10 || !(losses[len(losses)-1] < 0.7*losses[0]) {
			t.Errorf("%s: losses %v, want the last below 0.7x the first", preset, losses)
		}
	}
}
