// Package preftest holds the test fixtures of the preference trainers
// (dpo, orpo, kto, cpo): a BPE tokenizer trained on one-digit sums, a
// 2-layer GPT-2 briefly SFT'd on them (or a freshly initialised
// tiny-llama), built once per test binary, and the arithmetic preference
// data their tests train on. Call Main from the package's TestMain so that
// the fixture folder is removed at the end.
package preftest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/sft"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

var (
	dirOnce sync.Once
	dir     string // holds the fixtures; removed by Main
	dirErr  error

	sftOnce, baseOnce sync.Once
	sftErr, baseErr   error
)

// Main runs the tests of m and removes the fixtures.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func fixtureDir() (string, error) {
	dirOnce.Do(func() { dir, dirErr = os.MkdirTemp("", "preftest-") })
	return dir, dirErr
}

// Sum is "a+b=" -> a+b for the k-th of the 100 one-digit pairs.
func Sum(k int) (prompt string, c int) {
	a, b := k/10, k%10
	return fmt.Sprintf("%d+%d=", a, b), a + b
}

// trainTokenizer learns a small BPE vocabulary from arithmetic strings
// (and extra text).
func trainTokenizer(dir string, extra ...string) error {
	var corpus []string
	for k := range 100 {
		p, c := Sum(k)
		corpus = append(corpus, p+fmt.Sprint(c), p+fmt.Sprint(c+1))
	}
	corpus = append(corpus, extra...)
	tok, err := tokenizer.Train(slices.Values(corpus), tokenizer.TrainOptions{VocabSize: 300, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		return err
	}
	return tok.Save(dir)
}

// WriteJSONL writes rows to path, one JSON object a line.
func WriteJSONL(t testing.TB, path string, rows []map[string]any) {
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

// SFTModel returns the directory of a 2-layer GPT-2 briefly SFT'd on
// arithmetic (with checkpoint-10 inside it), and its tokenizer directory
// (trained on the sums and a pangram).
func SFTModel(t testing.TB) (sftDir, tokDir string) {
	t.Helper()
	root, err := fixtureDir()
	if err != nil {
		t.Fatalf("SFT fixture: %v", err)
	}
	tokDir, sftDir = filepath.Join(root, "tok"), filepath.Join(root, "sft")
	sftOnce.Do(func() {
		if sftErr = trainTokenizer(tokDir, "the quick brown fox jumps over the lazy dog"); sftErr != nil {
			return
		}
		data := filepath.Join(root, "sft-data")
		os.MkdirAll(data, 0o755)
		var rows []map[string]any
		for i := range 300 {
			p, c := Sum((i * 37) % 100)
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c)})
		}
		WriteJSONL(t, filepath.Join(data, "train.jsonl"), rows)
		// A 2-layer GPT-2 of width 128: quick on a shared CPU.
		initCfg := filepath.Join(root, "config.json")
		if sftErr = os.WriteFile(initCfg, []byte(`{"model_type":"gpt2","n_embd":128,"n_layer":2,"n_head":4,"n_positions":64,"vocab_size":320}`), 0o644); sftErr != nil {
			return
		}
		cfg := sft.DefaultConfig()
		cfg.Init = initCfg
		cfg.Tokenizer = tokDir
		cfg.Dataset = data
		cfg.OutputDir = sftDir
		cfg.MaxSteps = 30
		cfg.PerDeviceTrainBatchSize = 16
		cfg.LearningRate = 2e-3
		cfg.WarmupSteps = 3
		cfg.SaveSteps = 10
		cfg.NoCache = true
		_, sftErr = sft.Run(context.Background(), cfg, zerolog.Nop(), nil)
	})
	if sftErr != nil {
		t.Fatalf("SFT fixture: %v", sftErr)
	}
	return sftDir, tokDir
}

// BaseModel returns the directory of a randomly initialised tiny-llama
// preset with a tokenizer trained on the sums alone (CPO needs no SFT
// stage first: its NLL term on the chosen completions is one).
func BaseModel(t testing.TB) string {
	t.Helper()
	root, err := fixtureDir()
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	base := filepath.Join(root, "base")
	baseOnce.Do(func() {
		tokDir := filepath.Join(root, "tok-base")
		if baseErr = trainTokenizer(tokDir); baseErr != nil {
			return
		}
		baseErr = tensor.TidyErr(func() error {
			m, tok, err := checkpoint.New("tiny-llama", tokDir, model.LMHead, tensor.Float32, tensor.CPU, 1)
			if err != nil {
				return err
			}
			defer m.Free()
			return checkpoint.Save(base, m, tok)
		})
	})
	if baseErr != nil {
		t.Fatalf("fixture: %v", baseErr)
	}
	return base
}

// ArithmeticPairs writes preference pairs "a+b=" for the given pair
// indices: chosen the sum c, rejected the wrong answer c+off+k%2.
func ArithmeticPairs(t testing.TB, path string, ks []int, off int) {
	t.Helper()
	var rows []map[string]any
	for _, k := range ks {
		p, c := Sum(k)
		rows = append(rows, map[string]any{"prompt": p, "chosen": fmt.Sprint(c), "rejected": fmt.Sprint(c + off + k%2)})
	}
	WriteJSONL(t, path, rows)
}

// ArithmeticRows writes unpaired rows "a+b=" (KTO's) for the given
// indices: labels alternate in file order, desirable completions are the
// sum c, undesirable ones c+off+k%2 (so every sequential batch holds both).
func ArithmeticRows(t testing.TB, path string, ks []int, off int) {
	t.Helper()
	var rows []map[string]any
	for i, k := range ks {
		p, c := Sum(k)
		if i%2 == 0 {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c), "label": true})
		} else {
			rows = append(rows, map[string]any{"prompt": p, "completion": fmt.Sprint(c + off + k%2), "label": false})
		}
	}
	WriteJSONL(t, path, rows)
}

// LogHistory reads trainer_state.json's log_history in dir.
func LogHistory(t testing.TB, dir string) []map[string]float64 {
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

// Series returns the logged values of key in order.
func Series(h []map[string]float64, key string) []float64 {
	var out []float64
	for _, e := range h {
		if v, ok := e[key]; ok {
			out = append(out, v)
		}
	}
	return out
}

// ParamValues are m's parameters by name, as float32s.
func ParamValues(m *model.Model) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range m.Params() {
		out[p.Name] = p.T.Float32s()
	}
	return out
}

// CheckRefMixup checks a run with sync_ref_model whose last sync was its
// last step: the reference saved in outDir/ref_model is alpha * the final
// policy (outDir) + (1 - alpha) * the start (startDir), to 1e-6, and moved.
func CheckRefMixup(t testing.TB, startDir, outDir string, alpha float64) {
	t.Helper()
	load := func(dir string) map[string][]float32 {
		m, err := model.Load(dir, model.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		return ParamValues(m)
	}
	start, final, ref := load(startDir), load(outDir), load(filepath.Join(outDir, "ref_model"))
	moved := false
	for name, v := range ref {
		for i := range v {
			want := alpha*float64(final[name][i]) + (1-alpha)*float64(start[name][i])
			if math.Abs(float64(v[i])-want) > 1e-6 {
				t.Fatalf("ref %s[%d] = %g, want %g", name, i, v[i], want)
			}
			moved = moved || v[i] != start[name][i]
		}
	}
	if !moved {
		t.Error("the reference did not move")
	}
}
