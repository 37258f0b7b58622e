// Package generate samples continuations from a causal language model:
// batched, left-padded, with a KV cache; greedy, temperature, top-k and
// top-p; seeded and reproducible. PPO uses it for rollouts.
package generate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// Config holds the sampling settings, named as transformers' GenerationConfig.
type Config struct {
	MaxNewTokens int     // max_new_tokens: tokens to generate at most; default 64
	DoSample     bool    // do_sample: sample instead of greedy decoding; default false
	Temperature  float64 // temperature: logits are divided by it when sampling; default 1.0
	TopK         int     // top_k: keep the k most likely tokens (0 = all); default 0
	TopP         float64 // top_p: keep the smallest set with this much probability; default 1.0
	// RepetitionPenalty is repetition_penalty (Keskar et al. 2019,
	// arXiv:1909.05858, "penalized sampling", as transformers'
	// RepetitionPenaltyLogitsProcessor): the logit of every token already in
	// the row (prompt, its padding and generated tokens) is divided by it
	// when positive and multiplied by it when negative, before temperature,
	// top-k and top-p. 0 or 1 is none; default 1.0.
	RepetitionPenalty float64
	EOSTokenIDs       []int  // eos_token_id: generation of a row stops after one of these
	PadTokenID        int    // pad_token_id: fills prompts on the left and rows that have stopped
	Seed              uint64 // seed of the sampler; the same seed gives the same tokens
	NoCache           bool   // recompute the whole sequence at every step (for checking the cache)
	// NoSharedPrefill computes every row's prompt even when rows repeat a
	// prompt (for checking the sharing; see Generate).
	NoSharedPrefill bool
	// NoCompaction keeps finished rows in the batch to the end (for
	// checking the compaction; see Generate).
	NoCompaction bool
	// Logprobs, when > 0, records for each generated token its log
	// probability and the Logprobs most likely alternatives (vLLM's
	// logprobs=K), from the model's own distribution: log_softmax of the
	// raw logits, before temperature, top-k and top-p.
	Logprobs int
}

// DefaultConfig is greedy decoding of up to 64 tokens.
func DefaultConfig() Config {
	return Config{MaxNewTokens: 64, Temperature: 1, TopP: 1}
}

// Validate checks the settings.
func (c Config) Validate() error {
	var errs []error
	if c.MaxNewTokens < 0 {
		errs = append(errs, fmt.Errorf("max_new_tokens must be >= 0, got %d", c.MaxNewTokens))
	}
	if c.DoSample && c.Temperature <= 0 {
		errs = append(errs, fmt.Errorf("temperature must be > 0 when sampling, got %g", c.Temperature))
	}
	if c.Logprobs < 0 {
		errs = append(errs, fmt.Errorf("logprobs must be >= 0, got %d", c.Logprobs))
	}
	if c.TopK < 0 {
		errs = append(errs, fmt.Errorf("top_k must be >= 0, got %d", c.TopK))
	}
	if c.RepetitionPenalty < 0 {
		errs = append(errs, fmt.Errorf("repetition_penalty must be > 0, got %g", c.RepetitionPenalty))
	}
	if c.TopP <= 0 || c.TopP > 1 {
		errs = append(errs, fmt.Errorf("top_p must be in (0, 1], got %g", c.TopP))
	}
	return errors.Join(errs...)
}

// Result is the output for one prompt.
type Result struct {
	Tokens   []int // generated tokens, up to and including the stop token
	Finished bool  // stopped at an eos token (rather than at max_new_tokens)
	// Logprobs has one entry per token of Tokens when Config.Logprobs > 0.
	Logprobs []TokenLogprob
}

// TokenLogprob is a generated token's log probability and the most likely
// tokens at its position, most likely first.
type TokenLogprob struct {
	ID      int
	Logprob float64
	Top     []Alternative
}

// Alternative is one candidate token at a position.
type Alternative struct {
	ID      int
	Logprob float64
}

// Generate continues each prompt (token ids, no padding) with m, which must
// have an LM head. Prompts of different lengths are left-padded into one batch.
func Generate(m *model.Model, prompts [][]int, cfg Config) (res []Result, err error) {
	defer tensor.Recover(&err, "generate")
	if m.Head != model.LMHead {
		return nil, errors.New("generate: the model has no LM head")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	P := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		P = max(P, len(p))
	}
	if P+cfg.MaxNewTokens > m.Config.MaxPositions {
		return nil, fmt.Errorf("generate: prompt length %d + max_new_tokens %d exceeds the model's %d positions", P, cfg.MaxNewTokens, m.Config.MaxPositions)
	}
	V := m.Config.VocabSize
	for i, p := range prompts {
		for _, id := range p {
			if id < 0 || id >= V {
				return nil, fmt.Errorf("generate: prompt %d has token id %d outside the vocabulary (%d)", i, id, V)
			}
		}
	}
	eos := map[int]bool{}
	for _, e := range cfg.EOSTokenIDs {
		eos[e] = true
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	s := newSampler(cfg, rng, V)
	// Plain sampling (no top-k, no top-p) draws from probabilities computed
	// by libtorch; the rest needs the sorted logits in Go.
	penalty := cfg.RepetitionPenalty != 0 && cfg.RepetitionPenalty != 1
	plain := cfg.DoSample && (cfg.TopK <= 0 || cfg.TopK >= V) && cfg.TopP >= 1 && !penalty

	// Left-padded ids and mask, kept in Go and grown each step.
	ids := make([][]int64, B)
	mask := make([][]int64, B)
	for b, p := range prompts {
		pad := P - len(p)
		for i := 0; i < pad; i++ {
			ids[b] = append(ids[b], int64(cfg.PadTokenID))
			mask[b] = append(mask[b], 0)
		}
		for _, id := range p {
			ids[b] = append(ids[b], int64(id))
			mask[b] = append(mask[b], 1)
		}
	}
	res = make([]Result, B)
	done := 0
	var cache *model.KVCache
	if !cfg.NoCache {
		cache = m.NewKVCache()
		defer cache.Free()
	}
	// Rows that repeat a prompt (GRPO's num_generations samples of each)
	// share its prefill: the prompt runs once, its KV cache and last
	// logits are copied to every row that repeats it. Each row's own
	// computation is unchanged, so the tokens are the same.
	uniq, rep := prefillRows(prompts)
	share := cache != nil && !cfg.NoSharedPrefill && len(uniq) < B
	// Finished rows leave the batch (with the cache): rows lists the rows
	// the model still computes, in order; a row's computation does not
	// depend on the others, so the tokens are the same.
	rows := make([]int, B)
	for b := range rows {
		rows[b] = b
	}
	compact := cache != nil && !cfg.NoCompaction
	tensor.NoGrad(func() {
		for step := 0; step < cfg.MaxNewTokens && done < B; step++ {
			var logits, logprobs []float32
			tensor.Tidy(func() {
				L := len(ids[0])
				in := &model.Input{AttentionMask: tensor.FromInt64s(flatten(mask), int64(B), int64(L)).To(tensor.Int64, m.Device), Cache: cache}
				if len(rows) < B { // compacted: the remaining rows only
					var ms [][]int64
					for _, b := range rows {
						ms = append(ms, mask[b])
					}
					in.AttentionMask = tensor.FromInt64s(flatten(ms), int64(len(rows)), int64(L)).To(tensor.Int64, m.Device)
				}
				if share && step == 0 {
					sel := func(x [][]int64) [][]int64 {
						out := make([][]int64, len(uniq))
						for i, r := range uniq {
							out[i] = x[r]
						}
						return out
					}
					U := int64(len(uniq))
					in.AttentionMask = tensor.FromInt64s(flatten(sel(mask)), U, int64(L)).To(tensor.Int64, m.Device)
					in.IDs = tensor.FromInt64s(flatten(sel(ids)), U, int64(L)).To(tensor.Int64, m.Device)
				} else if cache == nil || step == 0 {
					in.IDs = tensor.FromInt64s(flatten(ids), int64(B), int64(L)).To(tensor.Int64, m.Device)
				} else {
					last := make([]int64, len(rows))
					for i, b := range rows {
						last[i] = ids[b][L-1]
					}
					in.IDs = tensor.FromInt64s(last, int64(len(rows)), 1).To(tensor.Int64, m.Device)
				}
				h := m.Hidden(in)
				h = h.Narrow(1, h.Size(1)-1, 1) // only the last position needs logits
				lg := m.Logits(h)               // (B, 1, V)
				if share && step == 0 {         // every row from its prompt's
					idx := tensor.FromInt64s(rep, int64(B)).To(tensor.Int64, m.Device)
					cache.Select(idx)
					lg = lg.IndexSelect(0, idx)
				}
				if cfg.Logprobs > 0 {
					logprobs = lg.LogSoftmax(-1).Float32s()
				}
				if plain {
					// softmax(logits / T) in libtorch (vectorized, threaded)
					// rather than B*V exps in Go: a fifth of a sampled
					// step's time on the tiny model.
					lg = lg.DivScalar(cfg.Temperature).Softmax(-1)
				}
				logits = lg.Float32s()
			})
			at := make([]int, B) // row b's position in this step's logits
			for i, b := range rows {
				at[b] = i
			}
			for b := 0; b < B; b++ {
				next := cfg.PadTokenID
				if !res[b].Finished {
					r := at[b]
					if penalty {
						penalize(logits[r*V:(r+1)*V], ids[b], cfg.RepetitionPenalty)
					}
					if plain {
						next = sampleProbs(logits[r*V:(r+1)*V], rng)
					} else {
						next = s.pick(logits[r*V : (r+1)*V])
					}
					res[b].Tokens = append(res[b].Tokens, next)
					if cfg.Logprobs > 0 {
						res[b].Logprobs = append(res[b].Logprobs, tokenLogprob(logprobs[r*V:(r+1)*V], next, cfg.Logprobs))
					}
					if eos[next] {
						res[b].Finished = true
						done++
					}
				}
				ids[b] = append(ids[b], int64(next))
				mask[b] = append(mask[b], 1)
			}
			// drop finished rows once they are an eighth of the batch (each
			// drop copies the cache)
			if finished := len(rows) - (B - done); compact && done < B && finished > 0 && finished*8 >= len(rows) {
				var keep []int64
				var left []int
				for i, b := range rows {
					if !res[b].Finished {
						keep = append(keep, int64(i))
						left = append(left, b)
					}
				}
				tensor.Tidy(func() { cache.Select(tensor.FromInt64s(keep, int64(len(keep))).To(tensor.Int64, m.Device)) })
				rows = left
			}
		}
	})
	return res, nil
}

// tokenLogprob is next's log probability in row lp and the k most likely
// tokens (ties by id).
func tokenLogprob(lp []float32, next, k int) TokenLogprob {
	t := TokenLogprob{ID: next, Logprob: float64(lp[next])}
	idx := make([]int, len(lp))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(lp[b], lp[a]) })
	for _, i := range idx[:min(k, len(idx))] {
		t.Top = append(t.Top, Alternative{ID: i, Logprob: float64(lp[i])})
	}
	return t
}

// penalize applies the repetition penalty p to the logits of the tokens
// in seen, each once.
func penalize(logits []float32, seen []int64, p float64) {
	done := map[int64]bool{}
	for _, id := range seen {
		if done[id] || id < 0 || int(id) >= len(logits) {
			continue
		}
		done[id] = true
		if v := logits[id]; v < 0 {
			logits[id] = float32(float64(v) * p)
		} else {
			logits[id] = float32(float64(v) / p)
		}
	}
}

func flatten(x [][]int64) []int64 {
	out := make([]int64, 0, len(x)*len(x[0]))
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// sampler picks a token from one row of logits.
type sampler struct {
	cfg   Config
	rng   *rand.Rand
	probs []float64
	idx   []int
}

func newSampler(cfg Config, rng *rand.Rand, V int) *sampler {
	return &sampler{cfg: cfg, rng: rng, probs: make([]float64, V), idx: make([]int, V)}
}

func (s *sampler) pick(logits []float32) int {
	if !s.cfg.DoSample {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	return sample(logits, s.cfg.Temperature, s.cfg.TopK, s.cfg.TopP, s.rng, s.probs, s.idx)
}

// sampleProbs draws index i with probability probs[i] / sum(probs).
func sampleProbs(probs []float32, rng *rand.Rand) int {
	var z float64
	for _, p := range probs {
		z += float64(p)
	}
	u := rng.Float64() * z
	last := 0
	for i, p := range probs {
		if p <= 0 {
			continue
		}
		last = i
		u -= float64(p)
		if u <= 0 {
			return i
		}
	}
	return last // rounding left u > 0: the last token with mass
}

// sample draws from softmax(logits/temperature) restricted to the top-k
// tokens and then to the smallest set whose probability reaches top-p, in
// transformers' order (temperature, top-k, top-p).
func sample(logits []float32, temperature float64, topK int, topP float64, rng *rand.Rand, probs []float64, idx []int) int {
	V := len(logits)
	maxv := math.Inf(-1)
	for _, v := range logits {
		maxv = math.Max(maxv, float64(v))
	}
	cand := idx[:0]
	for i := 0; i < V; i++ {
		cand = append(cand, i)
	}
	if topK > 0 && topK < V || topP < 1 {
		sort.Slice(cand, func(a, b int) bool {
			if logits[cand[a]] != logits[cand[b]] {
				return logits[cand[a]] > logits[cand[b]]
			}
			return cand[a] < cand[b]
		})
		if topK > 0 && topK < V {
			cand = cand[:topK]
		}
	}
	var z float64
	for _, i := range cand {
		p := math.Exp((float64(logits[i]) - maxv) / temperature)
		probs[i] = p
		z += p
	}
	if topP < 1 {
		// keep tokens until the cumulative probability reaches top_p (at least one)
		var cum float64
		n := 0
		for n < len(cand) {
			cum += probs[cand[n]] / z
			n++
			if cum >= topP {
				break
			}
		}
		cand = cand[:n]
		z = 0
		for _, i := range cand {
			z += probs[i]
		}
	}
	u := rng.Float64() * z
	for _, i := range cand {
		u -= probs[i]
		if u <= 0 {
			return i
		}
	}
	return cand[len(cand)-1]
}

// prefillRows finds repeated prompts: uniq lists the first row of each
// distinct prompt, and rep[b] is the position in uniq of row b's prompt.
func prefillRows(prompts [][]int) (uniq []int, rep []int64) {
	first := map[string]int64{}
	rep = make([]int64, len(prompts))
	for b, p := range prompts {
		key := fmt.Sprint(p)
		i, ok := first[key]
		if !ok {
			i = int64(len(uniq))
			first[key] = i
			uniq = append(uniq, b)
		}
		rep[b] = i
	}
	return uniq, rep
}
