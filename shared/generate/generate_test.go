package generate

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

func tinyModel(t *testing.T, preset string) *model.Model {
	t.Helper()
	return tinyModelIn(t, preset, tensor.Float32, 0.5)
}

// tinyModelIn is tinyModel with parameters in dtype dt drawn with standard
// deviation initRange.
func tinyModelIn(t *testing.T, preset string, dt tensor.DType, initRange float64) *model.Model {
	t.Helper()
	tensor.ManualSeed(3)
	cfg, err := model.Preset(preset, 97)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumLayers = 2
	cfg.InitializerRange = initRange // 0.5: peaky distributions make greedy paths meaningful
	m, err := model.New(cfg, model.LMHead, dt, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestKVCacheMatchesNoCache: with the cache, generation gives exactly the
// tokens that recomputing the whole sequence gives, greedy and sampled,
// with prompts of different lengths (left padding).
func TestKVCacheMatchesNoCache(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3", "tiny-mistral", "tiny-qwen2"} { // gemma: a window of 8 < the 19 positions
		m := tinyModel(t, preset)
		prompts := [][]int{{5, 9, 13, 2}, {7}, {1, 2, 3, 4, 5, 6, 7}}
		for _, sample := range []bool{false, true} {
			cfg := Config{MaxNewTokens: 12, DoSample: sample, Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 11, EOSTokenIDs: []int{96}}
			a, err := Generate(m, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.NoCache = true
			b, err := Generate(m, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if len(a[i].Tokens) == 0 || !equal(a[i].Tokens, b[i].Tokens) {
					t.Errorf("%s sample=%v prompt %d: cache %v, no cache %v", preset, sample, i, a[i].Tokens, b[i].Tokens)
				}
			}
		}
		m.Free()
	}
}

// TestBatchingDoesNotChangeResults: a prompt generates the same greedy
// tokens alone and left-padded inside a batch.
func TestBatchingDoesNotChangeResults(t *testing.T) {
	m := tinyModel(t, "tiny-llama")
	defer m.Free()
	cfg := Config{MaxNewTokens: 8, TopP: 1}
	alone, _ := Generate(m, [][]int{{4, 8}}, cfg)
	batch, err := Generate(m, [][]int{{1, 2, 3, 4, 5, 6}, {4, 8}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(alone[0].Tokens, batch[1].Tokens) {
		t.Errorf("alone %v, in a batch %v", alone[0].Tokens, batch[1].Tokens)
	}
}

func TestSeedReproducibleAndEOS(t *testing.T) {
	m := tinyModel(t, "tiny")
	defer m.Free()
	cfg := Config{MaxNewTokens: 10, DoSample: true, Temperature: 1, TopP: 1, Seed: 5}
	a, _ := Generate(m, [][]int{{3}}, cfg)
	b, _ := Generate(m, [][]int{{3}}, cfg)
	if !equal(a[0].Tokens, b[0].Tokens) {
		t.Errorf("same seed gave %v then %v", a[0].Tokens, b[0].Tokens)
	}
	// Stop at the first generated token by declaring it eos.
	cfg.EOSTokenIDs = []int{a[0].Tokens[0]}
	c, _ := Generate(m, [][]int{{3}}, cfg)
	if len(c[0].Tokens) != 1 || !c[0].Finished {
		t.Errorf("eos: got %v finished=%v, want one token and finished", c[0].Tokens, c[0].Finished)
	}
}

func TestBadInput(t *testing.T) {
	m := tinyModel(t, "tiny")
	defer m.Free()
	for _, c := range []struct {
		prompts [][]int
		cfg     Config
	}{
		{[][]int{{}}, DefaultConfig()},
		{[][]int{{1000}}, DefaultConfig()},
		{[][]int{{1}}, Config{MaxNewTokens: 10000, TopP: 1}},
		{[][]int{{1}}, Config{MaxNewTokens: 1, TopP: 0}},
	} {
		if _, err := Generate(m, c.prompts, c.cfg); err == nil {
			t.Errorf("Generate(%v, %+v) succeeded, want an error", c.prompts, c.cfg)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLogprobs: with Logprobs K each generated token carries its log
// probability under the model (equal to a separate forward's log_softmax
// at that position) and the K most likely tokens, most likely first;
// greedy decoding picks the first of them.
func TestLogprobs(t *testing.T) {
	m := tinyModel(t, "tiny-llama")
	defer m.Free()
	prompt := []int{3, 9, 4}
	for _, sample := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.MaxNewTokens, cfg.Logprobs, cfg.DoSample, cfg.Seed, cfg.Temperature = 5, 3, sample, 4, 0.7
		res, err := Generate(m, [][]int{prompt}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		if len(r.Logprobs) != len(r.Tokens) {
			t.Fatalf("%d logprobs for %d tokens", len(r.Logprobs), len(r.Tokens))
		}
		seq := append([]int(nil), prompt...)
		for i, lp := range r.Logprobs {
			// the reference: one forward over prompt + tokens so far
			var want []float32
			tensor.Tidy(func() {
				ids := make([]int64, len(seq))
				for j, x := range seq {
					ids[j] = int64(x)
				}
				want = m.Forward(&model.Input{IDs: tensor.FromInt64s(ids, 1, int64(len(ids)))}).Narrow(1, int64(len(ids)-1), 1).LogSoftmax(-1).Float32s()
			})
			if lp.ID != r.Tokens[i] || math.Abs(lp.Logprob-float64(want[lp.ID])) > 1e-4 {
				t.Errorf("sample %v token %d: id %d logprob %g, want %d %g", sample, i, lp.ID, lp.Logprob, r.Tokens[i], want[lp.ID])
			}
			if len(lp.Top) != 3 || lp.Top[0].Logprob < lp.Top[1].Logprob || lp.Top[1].Logprob < lp.Top[2].Logprob {
				t.Errorf("top %v: want 3, most likely first", lp.Top)
			}
			best := 0
			for v := range want {
				if want[v] > want[best] {
					best = v
				}
			}
			if lp.Top[0].ID != best || (!sample && lp.ID != best) {
				t.Errorf("sample %v token %d: top %d, argmax %d, chosen %d", sample, i, lp.Top[0].ID, best, lp.ID)
			}
			seq = append(seq, r.Tokens[i])
		}
	}
}

// TestSharedPrefillMatches: rows that repeat a prompt (GRPO's groups)
// compute it once and copy its cache; the tokens (and log-probs) equal
// those of computing every row, greedy and sampled, with prompts of
// different lengths interleaved (log-probs to float32 rounding: the
// prefill's matrix products run over fewer rows).
func TestSharedPrefillMatches(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama", "tiny-gemma3"} {
		m := tinyModel(t, preset)
		a, b := []int{5, 9, 13, 2}, []int{7, 1}
		prompts := [][]int{a, a, b, a, b, b, a, b}
		for _, sample := range []bool{false, true} {
			cfg := Config{MaxNewTokens: 10, DoSample: sample, Temperature: 0.9, TopP: 1, Seed: 5, Logprobs: 2}
			shared, err := Generate(m, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.NoSharedPrefill = true
			plain, err := Generate(m, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range prompts {
				if !equal(shared[i].Tokens, plain[i].Tokens) {
					t.Errorf("%s sample=%v row %d: shared prefill %v, plain %v", preset, sample, i, shared[i].Tokens, plain[i].Tokens)
				}
				for j := range plain[i].Logprobs {
					if d := math.Abs(shared[i].Logprobs[j].Logprob - plain[i].Logprobs[j].Logprob); d > 1e-4 {
						t.Errorf("%s row %d token %d: log-prob differs by %g", preset, i, j, d)
					}
				}
			}
		}
		m.Free()
	}
}

// TestCompactionMatches: rows that finish leave the batch; the others'
// tokens equal those of keeping every row to the end and computing every
// repeated prompt (and of no cache), greedy, plain sampling, and sampling
// with top-k, top-p and the repetition penalty (whose seen-token mask is
// compacted with the rows).
func TestCompactionMatches(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama"} {
		m := tinyModel(t, preset)
		var eos []int
		for id := 0; id < 97; id += 4 { // a quarter of the vocabulary stops a row
			eos = append(eos, id)
		}
		prompts := [][]int{{5, 9, 13, 2}, {7}, {1, 2, 3, 4, 5, 6, 7}, {3, 3}, {8, 1, 8}, {2, 9}, {6}, {4, 4, 4, 4}, {5, 9, 13, 2}}
		for _, cfg := range []Config{
			{MaxNewTokens: 12, Temperature: 1.1, TopP: 1, Seed: 9, EOSTokenIDs: eos},
			{MaxNewTokens: 12, DoSample: true, Temperature: 1.1, TopP: 1, Seed: 9, EOSTokenIDs: eos},
			{MaxNewTokens: 12, DoSample: true, Temperature: 0.8, TopK: 20, TopP: 0.9, RepetitionPenalty: 1.5, Seed: 9, EOSTokenIDs: eos},
		} {
			sample := fmt.Sprintf("%v/k%d/p%g/rp%g", cfg.DoSample, cfg.TopK, cfg.TopP, cfg.RepetitionPenalty)
			got, err := Generate(m, prompts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			lens := map[int]bool{}
			for _, r := range got {
				lens[len(r.Tokens)] = true
			}
			if len(lens) < 3 {
				t.Fatalf("%s: rows finished at %v: the test does not compact", preset, lens)
			}
			for _, other := range []Config{{NoCompaction: true, NoSharedPrefill: true}, {NoCache: true}} {
				c := cfg
				c.NoCompaction, c.NoSharedPrefill, c.NoCache = other.NoCompaction, other.NoSharedPrefill, other.NoCache
				want, err := Generate(m, prompts, c)
				if err != nil {
					t.Fatal(err)
				}
				for i := range prompts {
					if !equal(got[i].Tokens, want[i].Tokens) {
						t.Errorf("%s sample=%v row %d: compacted %v, %+v %v", preset, sample, i, got[i].Tokens, other, want[i].Tokens)
					}
				}
			}
		}
		m.Free()
	}
}

// TestRowSeedsIndependentOfBatch: with RowSeeds, each row samples the
// same tokens alone, in a batch, and in a batch of another order and
// composition (the data-parallel rollouts' guarantee), and two rows with
// different seeds differ.
func TestRowSeedsIndependentOfBatch(t *testing.T) {
	m := tinyModel(t, "tiny")
	defer m.Free()
	prompts := [][]int{{3, 4}, {5}, {3, 4}, {7, 8, 9}}
	seeds := []uint64{11, 12, 13, 14}
	cfg := Config{MaxNewTokens: 8, DoSample: true, Temperature: 1.3, TopP: 1, EOSTokenIDs: []int{2}}
	cfg.RowSeeds = seeds
	all, err := Generate(m, prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if equal(all[0].Tokens, all[2].Tokens) {
		t.Errorf("rows 0 and 2 repeat a prompt with other seeds but sampled the same %v", all[0].Tokens)
	}
	for i := range prompts {
		c := cfg
		c.RowSeeds = seeds[i : i+1]
		one, err := Generate(m, prompts[i:i+1], c)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(one[0].Tokens, all[i].Tokens) {
			t.Errorf("row %d alone sampled %v, in the batch %v", i, one[0].Tokens, all[i].Tokens)
		}
	}
	c := cfg
	c.RowSeeds = []uint64{seeds[3], seeds[1]}
	rev, err := Generate(m, [][]int{prompts[3], prompts[1]}, c)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(rev[0].Tokens, all[3].Tokens) || !equal(rev[1].Tokens, all[1].Tokens) {
		t.Errorf("reordered batch sampled %v %v, want %v %v", rev[0].Tokens, rev[1].Tokens, all[3].Tokens, all[1].Tokens)
	}
	c.RowSeeds = seeds[:1]
	if _, err := Generate(m, prompts, c); err == nil || !strings.Contains(err.Error(), "1 row seeds for 4 prompts") {
		t.Errorf("mismatched row seeds: err = %v", err)
	}
}
