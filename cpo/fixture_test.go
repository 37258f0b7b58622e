package cpo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Test fixtures: a tokenizer trained on arithmetic and a freshly
// initialised tiny-llama preset, built once per test binary. CPO needs no
// SFT stage first: its NLL term on the chosen completions is one.

func init() { tensor.SetNumThreads(0) }

var (
	fixtureOnce sync.Once
	fixtureDir  string // holds tok/ and base/
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

// baseModel returns the directory of a randomly initialised tiny-llama
// with the arithmetic tokenizer.
func baseModel(t testing.TB) string {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "cpo-fixture-")
		if fixtureErr != nil {
			return
		}
		tokDir := filepath.Join(fixtureDir, "tok")
		if _, fixtureErr = trainTokenizer(tokDir); fixtureErr != nil {
			return
		}
		fixtureErr = tensor.TidyErr(func() error {
			m, tok, err := checkpoint.New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
			if err != nil {
				return err
			}
			defer m.Free()
			return checkpoint.Save(filepath.Join(fixtureDir, "base"), m, tok)
		})
	})
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
	return filepath.Join(fixtureDir, "base")
}

// arithmeticPairs writes preference pairs "a+b=" for the given pair
// indices: chosen the sum c, rejected the wrong answer c+off+k%2.
func arithmeticPairs(t testing.TB, path string, ks []int, off int) {
	t.Helper()
	var rows []map[string]any
	for _, k := range ks {
		p, c := sum(k)
		rows = append(rows, map[string]any{"prompt": p, "chosen": fmt.Sprint(c), "rejected": fmt.Sprint(c + off + k%2)})
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
