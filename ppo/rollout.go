package ppo

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/dist"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/rollout"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// prompt is a tokenised prompt with its dataset row (which cmd: reward
// programs and column rewards read).
type prompt = rollout.Prompt

// sample is one episode of a rollout.
type sample struct {
	query     []int
	resp      []int // response_length tokens, pad after the end
	seqLen    int   // index of the last real token of the (stop-truncated) response
	logp, ref []float64
	values    []float64
	adv, ret  []float64
	score     float64
	hasEOS    bool
	prompt    *prompt
	rawEOS    int // eos tokens in the raw padded response
}

// Rollout holds the policy and the models it is scored with.
type Rollout struct {
	cfg    *Config
	Policy *model.Model
	Ref    *model.Model // nil when refIsPolicy
	Value  *model.Model
	// refIsPolicy: the reference is Policy with its LoRA adapters disabled
	refIsPolicy bool
	Rewards     []*rollout.Reward // reward_funcs (or reward_model_path)
	weights     []float64         // reward_weights
	Tok         *tokenizer.Tokenizer
	Prompts     []prompt
	Eval        []prompt
	OutputDir   string
	Log         zerolog.Logger
	Dist        *dist.Group // nil: one process

	pad, eos int
	stopIDs  []int
	rawEOS   int // eos tokens in the current rollout's raw responses
	buf      []*sample
	stats    map[string]float64 // rollout metrics for the next log
	started  time.Time
	episodes int
}

// seedFor derives a per-update seed so that a resumed run draws the same
// prompts and samples as an uninterrupted one.
func seedFor(seed int64, update, chunk int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d", seed, update, chunk)
	return h.Sum64()
}

// promptsFor returns the prompts of update u: consecutive slices of
// per-epoch seeded permutations of the prompt set.
func (r *Rollout) promptsFor(u, batch int) []prompt {
	n := len(r.Prompts)
	out := make([]prompt, batch)
	var perm []int
	permEpoch := -1
	for i := range out {
		g := u*batch + i
		e := g / n
		if e != permEpoch {
			perm = rand.New(rand.NewPCG(uint64(r.cfg.Seed), uint64(e)+0x1f)).Perm(n)
			permEpoch = e
		}
		out[i] = r.Prompts[perm[g%n]]
	}
	return out
}

// seqInput builds left-padded query + response rows and their mask.
// Response tokens after seqLen are padding.
func (r *Rollout) seqInput(ss []*sample, dev tensor.Device) (*model.Input, int) {
	C := 0
	for _, s := range ss {
		C = max(C, len(s.query))
	}
	R := r.cfg.ResponseLength
	L := C + R
	ids := make([]int64, len(ss)*L)
	mask := make([]int64, len(ss)*L)
	for i, s := range ss {
		row, mrow := ids[i*L:(i+1)*L], mask[i*L:(i+1)*L]
		off := C - len(s.query)
		for t := 0; t < off; t++ {
			row[t] = int64(r.pad)
		}
		for t, id := range s.query {
			row[off+t], mrow[off+t] = int64(id), 1
		}
		for t := 0; t < R; t++ {
			row[C+t] = int64(s.resp[t])
			if t <= s.seqLen {
				mrow[C+t] = 1
			}
		}
	}
	B := int64(len(ss))
	return &model.Input{
		IDs:           tensor.FromInt64s(ids, B, int64(L)).To(tensor.Int64, dev),
		AttentionMask: tensor.FromInt64s(mask, B, int64(L)).To(tensor.Int64, dev),
	}, C
}

func respTokens(ss []*sample, R int, dev tensor.Device) *tensor.Tensor {
	v := make([]int64, 0, len(ss)*R)
	for _, s := range ss {
		for _, id := range s.resp {
			v = append(v, int64(id))
		}
	}
	return tensor.FromInt64s(v, int64(len(ss)), int64(R)).To(tensor.Int64, dev)
}

// respLogps is log p of each response token under m, logits divided by
// temperature + 1e-7 as TRL does, with the entropies, through m's chunked
// LM head (model.Model.TokenLogps): the (B, R, V) logits never exist.
func (r *Rollout) respLogps(m *model.Model, in *model.Input, C int, tokens *tensor.Tensor) model.TokenLogps {
	h := m.Hidden(in).Narrow(1, int64(C-1), int64(r.cfg.ResponseLength))
	return m.TokenLogps(h, tokens, r.cfg.Temperature+1e-7)
}

// values returns the value model's predictions for each response position (B, R).
func (r *Rollout) valuesOf(in *model.Input, C int) *tensor.Tensor {
	h := r.Value.Hidden(in).Narrow(1, int64(C-1), int64(r.cfg.ResponseLength))
	return r.Value.Scores(h).Squeeze(2)
}

// Collect generates and scores a rollout for update u and computes
// advantages; it replaces the buffer.
func (r *Rollout) Collect(u int) (err error) {
	defer tensor.Recover(&err, "ppo rollout")
	if r.started.IsZero() {
		r.started = time.Now()
	}
	cfg := r.cfg
	R := cfg.ResponseLength
	// Data parallel: the rollout is the world's (batch_size x world);
	// rank k generates and scores its contiguous share, each row sampled
	// with a seed of its own row in the whole rollout (one process samples
	// the same), then the shares are gathered so that the whitening and
	// the metrics are the whole batch's and the trainer's
	// DistributedSampler cut serves each rank its micro-batches.
	w, rank := r.Dist.Size(), r.Dist.RankOf()
	B := cfg.BatchSize() * w
	prompts := r.promptsFor(u, B)
	first, last := rank*B/w, (rank+1)*B/w
	chunk := max(cfg.LocalRolloutForwardBatchSize, 1)
	r.buf = r.buf[:0]
	r.rawEOS = 0
	began := time.Now()
	genTokens := 0
	for lo := first; lo < last; lo += chunk {
		ps := prompts[lo:min(lo+chunk, last)]
		ids := make([][]int, len(ps))
		seeds := make([]uint64, len(ps))
		for i, p := range ps {
			ids[i] = p.IDs
			seeds[i] = rollout.RowSeed(seedFor(cfg.Seed, u, 0), lo+i)
		}
		gcfg := generate.Config{MaxNewTokens: R, DoSample: true, Temperature: cfg.Temperature + 1e-7, TopP: 1,
			EOSTokenIDs: r.stopIDs, PadTokenID: r.pad, RowSeeds: seeds}
		res, err := generate.Generate(r.Policy, ids, gcfg)
		if err != nil {
			return err
		}
		for i, g := range res {
			s := &sample{query: ps[i].IDs, prompt: &ps[i]}
			genTokens += len(g.Tokens)
			s.resp, s.seqLen, s.hasEOS, s.rawEOS = r.postprocess(g.Tokens)
			r.buf = append(r.buf, s)
		}
	}
	n := len(r.buf)
	genTime := time.Since(began)
	// No-grad forwards: policy and reference log-probs, values, scores.
	tensor.NoGrad(func() {
		for lo := 0; lo < n; lo += chunk {
			ss := r.buf[lo:min(lo+chunk, n)]
			tensor.Tidy(func() {
				in, C := r.seqInput(ss, r.Policy.Device)
				toks := respTokens(ss, R, r.Policy.Device)
				lp := r.respLogps(r.Policy, in, C, toks).Logp.Float64s()
				var rf []float64
				if r.refIsPolicy {
					noAd := *in
					noAd.DisableAdapters = true
					rf = r.respLogps(r.Policy, &noAd, C, toks).Logp.Float64s()
				} else {
					rf = r.respLogps(r.Ref, in, C, toks).Logp.Float64s()
				}
				vs := r.valuesOf(in, C).Float64s()
				for i, s := range ss {
					s.logp, s.ref, s.values = lp[i*R:(i+1)*R], rf[i*R:(i+1)*R], vs[i*R:(i+1)*R]
				}
			})
		}
	})
	perFunc, err := r.score(r.buf, chunk)
	if err != nil {
		return err
	}
	if w > 1 {
		if perFunc, err = r.gather(prompts, perFunc); err != nil {
			return err
		}
	}
	for _, s := range r.buf {
		r.rawEOS += s.rawEOS
	}
	r.advantages()
	r.rewardStats(perFunc)
	r.episodes = (u + 1) * B
	r.stats["gen_tokens_per_s"] = float64(genTokens) / genTime.Seconds()
	r.stats["time/rollout_s"] = time.Since(began).Seconds() // generation, scoring, advantages
	return nil
}

// gather replaces the buffer (this rank's share of the rollout, from
// prompts) with the world's: one all-gather of fixed-width rows
// (response, its length, eos flags, log-probs, reference log-probs,
// values, score, and each reward function's reward, so that
// rewards/{name}/mean is the world's mean). It returns the world's perFunc,
// in the order of the new buffer.
func (r *Rollout) gather(prompts []prompt, perFunc [][]float64) ([][]float64, error) {
	R := r.cfg.ResponseLength
	w := r.Dist.Size()
	per := len(prompts) / w
	K := len(perFunc)
	width := 4 + 4*R + K
	buf := make([]float64, per*width)
	for i, s := range r.buf {
		row := buf[i*width : (i+1)*width]
		row[0], row[1], row[2], row[3] = float64(s.seqLen), b2f64(s.hasEOS), float64(s.rawEOS), s.score
		for t := range R {
			row[4+t], row[4+R+t], row[4+2*R+t], row[4+3*R+t] = float64(s.resp[t]), s.logp[t], s.ref[t], s.values[t]
		}
		for k := range K {
			row[4+4*R+k] = perFunc[k][i]
		}
	}
	all, err := r.Dist.AllGather(buf)
	if err != nil {
		return nil, fmt.Errorf("ppo: gather the rollout: %w", err)
	}
	world := make([][]float64, K)
	for _, part := range all {
		for i := range per {
			for k := range K {
				world[k] = append(world[k], part[i*width+4+4*R+k])
			}
		}
	}
	own := r.buf
	r.buf = make([]*sample, 0, len(prompts))
	for k, part := range all {
		if k == r.Dist.RankOf() {
			r.buf = append(r.buf, own...)
			continue
		}
		for i := range per {
			row := part[i*width : (i+1)*width]
			p := prompts[k*per+i]
			s := &sample{query: p.IDs, prompt: &prompts[k*per+i], seqLen: int(row[0]), hasEOS: row[1] == 1, rawEOS: int(row[2]), score: row[3],
				resp: make([]int, R), logp: make([]float64, R), ref: make([]float64, R), values: make([]float64, R)}
			for t := range R {
				s.resp[t] = int(row[4+t])
				s.logp[t], s.ref[t], s.values[t] = row[4+R+t], row[4+2*R+t], row[4+3*R+t]
			}
			r.buf = append(r.buf, s)
		}
	}
	return world, nil
}

func b2f64(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// score sets each sample's score: the weighted sum of the reward
// functions' rewards of its response (the tokens up to seqLen, decoded
// without special tokens for text rewards), scored in chunks of chunk
// samples. A function without a reward for a response (null, TRL's None)
// is left out of the sum; a response no function rewards scores 0, as
// TRL's nansum gives (with a warning). perFunc[k] are function k's rewards
// (NaN: none).
func (r *Rollout) score(ss []*sample, chunk int) (perFunc [][]float64, err error) {
	cs := make([]*rollout.Completion, len(ss))
	for i, s := range ss {
		ids := s.resp[:s.seqLen+1]
		text, err := r.Tok.Decode(ids, true)
		if err != nil {
			return nil, fmt.Errorf("ppo: decode a response: %w", err)
		}
		cs[i] = &rollout.Completion{Prompt: s.prompt, IDs: ids, Terminated: s.hasEOS, Text: text}
	}
	perFunc = make([][]float64, len(r.Rewards))
	for k, rw := range r.Rewards {
		for lo := 0; lo < len(cs); lo += chunk {
			v, err := rw.Score(cs[lo:min(lo+chunk, len(cs))], r.pad)
			if err != nil {
				return nil, fmt.Errorf("ppo: %w", err)
			}
			perFunc[k] = append(perFunc[k], v...)
		}
	}
	none := 0
	row := make([]float64, len(r.Rewards))
	for i, s := range ss {
		for k := range row {
			row[k] = perFunc[k][i]
		}
		if s.score = rollout.WeightedSum(row, r.weights); math.IsNaN(s.score) {
			s.score = 0
			none++
		}
	}
	if none > 0 {
		r.Log.Warn().Int("responses", none).Msg("ppo: no reward function gave a reward (all null): those responses score 0")
	}
	return perFunc, nil
}

// rewardStats adds rewards/{name}/mean, each function's mean reward over
// the rollout (GRPO's name), when there are several.
func (r *Rollout) rewardStats(perFunc [][]float64) {
	if len(r.Rewards) < 2 {
		return
	}
	for k, rw := range r.Rewards {
		var sum, n float64
		for _, v := range perFunc[k] {
			if !math.IsNaN(v) {
				sum, n = sum+v, n+1
			}
		}
		if n > 0 {
			r.stats["rewards/"+rw.Name+"/mean"] = sum / n
		}
	}
}

// postprocess turns generated tokens into TRL's rollout response
// (trl/experimental/ppo/ppo_trainer.py, "Response Processing"): padded to
// response_length, truncated after the first stop token
// (truncate_response), sequence_length = first_true_indices(response ==
// pad) - 1 (so with pad == eos the eos is padding and is not trained), and
// contain_eos_token over the whole processed response. rawEOS counts eos
// in the raw padded response (val/num_eos_tokens).
func (r *Rollout) postprocess(tokens []int) (resp []int, seqLen int, hasEOS bool, rawEOS int) {
	R := r.cfg.ResponseLength
	resp = make([]int, R)
	for t := range resp {
		resp[t] = r.pad
	}
	copy(resp, tokens)
	for _, id := range resp {
		if id == r.eos {
			rawEOS++
		}
	}
	for t, id := range resp {
		if r.isStop(id) {
			for u := t + 1; u < R; u++ {
				resp[u] = r.pad
			}
			break
		}
	}
	seqLen = R - 1
	for t, id := range resp {
		if id == r.pad {
			seqLen = t - 1
			break
		}
	}
	return resp, seqLen, slices.Contains(resp, r.eos), rawEOS
}

func (r *Rollout) isStop(id int) bool {
	for _, s := range r.stopIDs {
		if id == s {
			return true
		}
	}
	return false
}

// advantages applies TRL's reward shaping, GAE and whitening to the buffer
// and records the rollout metrics.
func (r *Rollout) advantages() {
	cfg := r.cfg
	R := cfg.ResponseLength
	n := len(r.buf)
	rewards := make([][]float64, n)
	padMask := make([][]bool, n)   // true where valid (~padding_mask)
	padMaskP1 := make([][]bool, n) // ~padding_mask_p1
	var klSum, entSum, nonScoreSum, scoreSum float64
	for i, s := range r.buf {
		if cfg.MissingEOSPenalty != nil && !s.hasEOS {
			s.score -= *cfg.MissingEOSPenalty
		}
		rewards[i] = make([]float64, R)
		padMask[i] = make([]bool, R)
		padMaskP1[i] = make([]bool, R)
		for t := 0; t < R; t++ {
			padMask[i][t] = t <= s.seqLen
			padMaskP1[i][t] = t <= s.seqLen+1
			if !padMask[i][t] {
				s.logp[t], s.ref[t] = InvalidLogprob, InvalidLogprob
			}
			if !padMaskP1[i][t] {
				s.values[t] = 0
			}
			kl := KL(s.logp[t], s.ref[t], cfg.KLEstimator)
			rewards[i][t] = -cfg.KLCoef * kl
			klSum += kl
			nonScoreSum += rewards[i][t]
			entSum += -s.logp[t] // TRL: every position, INVALID_LOGPROB (1) at padding
		}
		end := s.seqLen + 1
		if end >= R {
			end = s.seqLen
		}
		rewards[i][end] += s.score
		scoreSum += s.score
	}
	if cfg.WhitenRewards {
		rewards = MaskedWhiten(rewards, padMaskP1, false)
		for i := range rewards {
			for t := range rewards[i] {
				if !padMaskP1[i][t] {
					rewards[i][t] = 0
				}
			}
		}
	}
	advs := make([][]float64, n)
	for i, s := range r.buf {
		advs[i], s.ret = GAE(rewards[i], s.values, cfg.Gamma, cfg.Lam)
	}
	advs = MaskedWhiten(advs, padMask, true)
	for i, s := range r.buf {
		s.adv = advs[i]
		for t := range s.adv {
			if !padMask[i][t] {
				s.adv[t] = 0
			}
		}
	}
	N := float64(n)
	r.stats = map[string]float64{
		"objective/kl":               klSum / N,
		"objective/entropy":          entSum / N,
		"objective/non_score_reward": nonScoreSum / N,
		"objective/rlhf_reward":      nonScoreSum/N + scoreSum/N,
		"objective/scores":           scoreSum / N,
		"val/num_eos_tokens":         float64(r.rawEOS),
	}
}

// WriteSamples generates near-greedy completions (temperature 0.01, as
// TRL's generate_completions) for up to 8 held-out prompts, scores them
// and writes samples/update-N.jsonl; it returns their mean score.
func (r *Rollout) WriteSamples(u int) (mean float64, err error) {
	defer tensor.Recover(&err, "ppo samples")
	ps := r.Eval
	if len(ps) > 8 {
		ps = ps[:8]
	}
	if len(ps) == 0 {
		return 0, nil
	}
	ids := make([][]int, len(ps))
	for i, p := range ps {
		ids[i] = p.IDs
	}
	res, err := generate.Generate(r.Policy, ids, generate.Config{MaxNewTokens: r.cfg.ResponseLength, DoSample: true, Temperature: 0.01 + 1e-7, TopP: 1, EOSTokenIDs: r.stopIDs, PadTokenID: r.pad, Seed: seedFor(r.cfg.Seed, u, -1)})
	if err != nil {
		return 0, err
	}
	type row struct {
		Prompt   string  `json:"query"`
		Response string  `json:"model response"`
		Score    float64 `json:"score"`
	}
	var rows []row
	var ss []*sample
	for i, g := range res {
		text, _ := r.Tok.Decode(g.Tokens, true)
		rows = append(rows, row{Prompt: ps[i].Text, Response: text})
		s := &sample{query: ps[i].IDs, prompt: &ps[i], resp: make([]int, r.cfg.ResponseLength), seqLen: len(g.Tokens) - 1}
		for t := range s.resp {
			s.resp[t] = r.pad
		}
		copy(s.resp, g.Tokens)
		ss = append(ss, s)
	}
	if _, err := r.score(ss, len(ss)); err != nil {
		return 0, err
	}
	for i, s := range ss {
		rows[i].Score = s.score
	}
	var buf []byte
	for _, rw := range rows {
		b, _ := json.Marshal(rw)
		buf = append(append(buf, b...), '\n')
		mean += rw.Score / float64(len(rows))
	}
	if !r.Dist.IsMain() { // every rank computes the same mean; rank 0 writes
		return mean, nil
	}
	dir := filepath.Join(r.OutputDir, "samples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := fsutil.WriteFile(filepath.Join(dir, fmt.Sprintf("update-%d.jsonl", u+1)), buf, 0o644); err != nil {
		return 0, err
	}
	for _, rw := range rows[:min(3, len(rows))] {
		r.Log.Info().Str("query", clip(rw.Prompt, 60)).Str("response", clip(rw.Response, 80)).Float64("score", math.Round(rw.Score*1000)/1000).Msg("sample")
	}
	return mean, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var _ = metrics.FormatDuration
