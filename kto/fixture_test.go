package kto

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Test fixtures: a tokenizer trained on arithmetic and a 2-layer GPT-2 SFT'd
// on it, built once per test binary and shared by the tests that train.

func init() { tensor.SetNumThreads(0) }

var (
	fixtureOnce sync.Once
	fixtureDir  string // holds tok/ and sft/
	fixtureErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// sum is "a+b=" -> a+b for the k-th of the 100 one-digit pairs.
func sum(k int) (prompt string, c int) {
	a, b := k/10, k%10
	return fmt.Sprintf("%d+%d=", a, b), a + b
}

// trainTokenizer learns a small BPE vocabulary from arithmetic strings.
func trainTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	var corpus []string
	for k := range 100 {
		p, c := sum(k)
		corpus = append(corpus, p+fmt.Sprint(c), p+fmt.Sprint(c+1))
	}
	corpus = append(corpus, "the quick brown fox jumps over the lazy dog")
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		return nil, err
	}
	return tok, tok.Save(dir)
}

func writeJSONL(t testing.TB, path string, rows []map[string]any) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
}

// sftModel returns the directory of a 2-layer GPT-2 briefly SFT'd on
// arithmetic (with checkpoint-10 inside it), and the tokenizer directory.
func sftModel(t testing.TB) (sftDir, tokDir string) {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "kto-fixture-")
		if fixtureErr != nil {
			return
		}
		tokDir := filepath.Join(fixtureDir, "tok")
		if _, fixtureErr = trainTokenizer(tokDir); fixtureErr != nil {
			return
		}
		data := filepath.Join(fixtureDir, "sft-data")
		os.MkdirAll(data, 0o755)
		var rows []map[string]any
		for i := range 300 {
			p, c := sum((i * 37) % 100)
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c)})
		}
		writeJSONL(t, filepath.Join(data, "train.jsonl"), rows)
		// A 2-layer GPT-2 of width 128: quick on a shared CPU.
		initCfg := filepath.Join(fixtureDir, "config.json")
		if fixtureErr = os.WriteFile(initCfg, []byte(`{"model_type":"gpt2","n_embd":128,"n_layer":2,"n_head":4,"n_positions":64,"vocab_size":320}`), 0o644); fixtureErr != nil {
			return
		}
		cfg := sft.DefaultConfig()
		cfg.Init = initCfg
		cfg.Tokenizer = tokDir
		cfg.Dataset = data
		cfg.OutputDir = filepath.Join(fixtureDir, "sft")
		cfg.MaxSteps = 30
		cfg.PerDeviceTrainBatchSize = 16
		cfg.LearningRate = 2e-3
		cfg.WarmupSteps = 3
		cfg.SaveSteps = 10
		cfg.NoCache = true
		_, fixtureErr = sft.Run(context.Background(), cfg, zerolog.Nop(), nil)
	})
	if fixtureErr != nil {
		t.Fatalf("SFT fixture: %v", fixtureErr)
	}
	return filepath.Join(fixtureDir, "sft"), filepath.Join(fixtureDir, "tok")
}

// arithmeticRows writes unpaired rows "a+b=" for the given indices:
// labels alternate in file order, desirable completions are the sum c,
// undesirable ones c+off+k%2 (so every sequential batch holds both).
func arithmeticRows(t testing.TB, path string, ks []int, off int) {
	t.Helper()
	var rows []map[string]any
	for i, k := range ks {
		p, c := sum(k)
		if i%2 == 0 {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c), "label": true})
		} else {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c + off + k%2), "label": false})
		}
	}
	writeJSONL(t, path, rows)
}

// logHistory reads trainer_state.json's log_history.
func logHistory(t testing.TB, dir string) []map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		LogHistory []map[string]float64 `json:"log_history"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.LogHistory
}

// series returns the logged values of key in order.
func series(h []map[string]float64, key string) []float64 {
	var out []float64
	for _, e := range h {
		if v, ok := e[key]; ok {
			out = append(out, v)
		}
	}
	return out
}
