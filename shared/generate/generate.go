// Package generate samples continuations from a causal language model:
// batched, left-padded, with a KV cache; greedy, temperature, top-k,
// top-p and repetition penalty computed in libtorch on the model's device
// (only the chosen ids come back each step); seeded and reproducible. PPO,
// GRPO and RLOO use it for rollouts.
package generate

import (
	"errors"
	"fmt"
	"math/rand/v2"

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
	// RowSeeds, when set (one per prompt), gives each row a sampler of its
	// own instead of one stream for the batch: a row's tokens then do not
	// depend on the other rows of the batch, its chunk or its position in
	// it (data-parallel rollouts split a generation across ranks and
	// sample what one process sampling the whole batch does).
	RowSeeds []uint64
	NoCache  bool // recompute the whole sequence at every step (for checking the cache)
	// NoSharedPrefill computes every row's prompt even when rows repeat a
	// prompt (for checking the sharing; see Generate).
	NoSharedPrefill bool
	// NoCompaction keeps finished rows in the batch to the end (for
	// checking the compaction; see Generate).
	NoCompaction bool
	// Unfused runs each decoding step by libtorch's ops only, not rl's
	// fused CPU kernels for attention and the draw (model.Input.Unfused,
	// tensor.SampleRows), for checking them: they agree to float32
	// rounding, and so draw the same tokens but where a uniform falls
	// within about 1e-7 of a boundary of the cumulative distribution.
	Unfused bool
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
	var rowRNG []*rand.Rand
	if cfg.RowSeeds != nil {
		if len(cfg.RowSeeds) != B {
			return nil, fmt.Errorf("generate: %d row seeds for %d prompts", len(cfg.RowSeeds), B)
		}
		rowRNG = make([]*rand.Rand, B)
		for b, sd := range cfg.RowSeeds {
			rowRNG[b] = rand.New(rand.NewPCG(sd, 0x9e3779b97f4a7c15))
		}
	}
	penalty := cfg.RepetitionPenalty != 0 && cfg.RepetitionPenalty != 1

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
	// Without left padding (every prompt as long as the longest; a finished
	// row grows by pad tokens that stay attended, as in transformers'
	// generate) the mask is all ones: the model runs without one, which
	// gives the same positions (0, 1, ...) and attention, in fewer ops.
	noMask := true
	for _, p := range prompts {
		noMask = noMask && len(p) == P
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
	// seen (rows, V) marks the tokens in each computed row, for the
	// repetition penalty.
	var seen *tensor.Tensor
	defer func() { seen.Free() }()
	u := make([]float64, B)
	tensor.NoGrad(func() {
		for step := 0; step < cfg.MaxNewTokens && done < B; step++ {
			var next []int64
			var lps []TokenLogprob
			tensor.Tidy(func() {
				L := len(ids[0])
				in := &model.Input{Cache: cache, Unfused: cfg.Unfused}
				switch {
				case noMask:
				case len(rows) < B: // compacted: the remaining rows only
					var ms [][]int64
					for _, b := range rows {
						ms = append(ms, mask[b])
					}
					in.AttentionMask = tensor.Int64sOn(flatten(ms), m.Device, int64(len(rows)), int64(L))
				default:
					in.AttentionMask = tensor.Int64sOn(flatten(mask), m.Device, int64(B), int64(L))
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
					if !noMask {
						in.AttentionMask = tensor.Int64sOn(flatten(sel(mask)), m.Device, U, int64(L))
					}
					in.IDs = tensor.Int64sOn(flatten(sel(ids)), m.Device, U, int64(L))
				} else if cache == nil || step == 0 {
					in.IDs = tensor.Int64sOn(flatten(ids), m.Device, int64(B), int64(L))
				} else {
					last := make([]int64, len(rows))
					for i, b := range rows {
						last[i] = ids[b][L-1]
					}
					in.IDs = tensor.Int64sOn(last, m.Device, int64(len(rows)), 1)
				}
				h := m.Hidden(in)
				h = h.Narrow(1, h.Size(1)-1, 1) // only the last position needs logits
				lg := m.LogitsFor(in, h)        // (B, 1, V)
				if share && step == 0 {         // every row from its prompt's
					idx := tensor.Int64sOn(rep, m.Device, int64(B))
					if m.CanShare() && !cfg.Unfused {
						cache.Share(rep) // the prompts' keys and values stay stored once
					} else {
						cache.Select(idx)
					}
					lg = lg.IndexSelect(0, idx)
				}
				R := int64(len(rows))
				lg = lg.Reshape(R, int64(V))
				if penalty && seen == nil { // the prompts and their padding
					var cur [][]int64
					for _, b := range rows {
						cur = append(cur, ids[b])
					}
					seen = tensor.ZerosOn([]int64{R, int64(V)}, tensor.Bool, m.Device).
						ScatterValue(1, tensor.Int64sOn(flatten(cur), m.Device, R, int64(L)), 1).Keep()
				}
				if cfg.DoSample {
					for i, b := range rows {
						u[i] = 0
						switch {
						case res[b].Finished:
						case rowRNG != nil:
							u[i] = rowRNG[b].Float64()
						default:
							u[i] = rng.Float64()
						}
					}
				}
				next = pick(lg, seen, u[:len(rows)], cfg)
				if cfg.Logprobs > 0 {
					lps = tokenLogprobs(lg, next, cfg.Logprobs)
				}
			})
			for i, b := range rows {
				tok := int64(cfg.PadTokenID)
				if !res[b].Finished {
					tok = next[i]
					res[b].Tokens = append(res[b].Tokens, int(tok))
					if cfg.Logprobs > 0 {
						res[b].Logprobs = append(res[b].Logprobs, lps[i])
					}
					if eos[int(tok)] {
						res[b].Finished = true
						done++
					}
				}
				next[i] = tok
			}
			// every row grows by its token; rows that have finished (and
			// those compacted away) by padding
			grow := make([]int64, B)
			for b := range grow {
				grow[b] = int64(cfg.PadTokenID)
			}
			for i, b := range rows {
				grow[b] = next[i]
			}
			for b := range B {
				ids[b] = append(ids[b], grow[b])
				mask[b] = append(mask[b], 1)
			}
			if seen != nil {
				tensor.Tidy(func() {
					idx := tensor.Int64sOn(next, m.Device, int64(len(rows)), 1)
					s := seen.ScatterValue(1, idx, 1).Keep()
					seen.Free()
					seen = s
				})
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
				tensor.Tidy(func() {
					idx := tensor.Int64sOn(keep, m.Device, int64(len(keep)))
					cache.Select(idx)
					if seen != nil {
						s := seen.IndexSelect(0, idx).Keep()
						seen.Free()
						seen = s
					}
				})
				rows = left
			}
		}
	})
	return res, nil
}

// tokenLogprobs gives, for each row of logits (R, V), the log probability
// of next[r] under log_softmax of the raw logits and the k most likely
// tokens, computed on the logits' device (R x (k+1) values come back).
func tokenLogprobs(logits *tensor.Tensor, next []int64, k int) []TokenLogprob {
	R, V := logits.Size(0), logits.Size(1)
	lp := logits.ToDType(tensor.Float32).LogSoftmax(-1)
	chosen := lp.Gather(1, tensor.Int64sOn(next, lp.Device(), R, 1)).To(tensor.Float32, tensor.CPU).Float32s()
	K := min(int64(k), V)
	tv, ti := lp.Topk(K, -1)
	vals, ids := tv.To(tensor.Float32, tensor.CPU).Float32s(), ti.To(tensor.Int64, tensor.CPU).Int64s()
	out := make([]TokenLogprob, R)
	for r := range out {
		out[r] = TokenLogprob{ID: int(next[r]), Logprob: float64(chosen[r])}
		for j := int64(0); j < K; j++ {
			out[r].Top = append(out[r].Top, Alternative{ID: int(ids[int64(r)*K+j]), Logprob: float64(vals[int64(r)*K+j])})
		}
	}
	return out
}

func flatten(x [][]int64) []int64 {
	out := make([]int64, 0, len(x)*len(x[0]))
	for _, r := range x {
		out = append(out, r...)
	}
	return out
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
