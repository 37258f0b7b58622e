package reward

import (
	"encoding/binary"
	"math"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference"
	"github.com/rlsuite/rl/shared/tensor"
)

// Task is the reward-model loss over a batch of preference pairs. It logs
// TRL's accuracy, margin, min_reward, mean_reward and max_reward.
type Task struct {
	M *model.Model // a score model with num_labels 1
	// CenterRewardsCoefficient is RewardConfig.center_rewards_coefficient; nil: none.
	CenterRewardsCoefficient *float64
}

// Loss implements train.Task.
func (t *Task) Loss(b *preference.Batch, acc *metrics.Accumulator, training bool) *tensor.Tensor {
	r := t.rewards(b, training) // (2B)
	B := int64(b.B)
	chosen, rejected := r.Narrow(0, 0, B), r.Narrow(0, B, B) // (B), (B)
	var margins []float64
	if b.HasMargin {
		margins = b.Margins
	}
	loss := PairwiseLoss(chosen, rejected, margins, t.CenterRewardsCoefficient)
	tensor.NoGrad(func() {
		v := r.Float64s()
		for k, x := range Stats(v[:b.B], v[b.B:]) {
			acc.Add(k, x)
		}
	})
	return loss
}

// Rewards returns the score of every row of b (2B): rows 0..B-1 are the
// chosen completions, B..2B-1 the rejected ones.
func (t *Task) Rewards(b *preference.Batch) *tensor.Tensor { return t.rewards(b, false) }

func (t *Task) rewards(b *preference.Batch, train bool) *tensor.Tensor {
	return scoresAt(t.M, b.IDs, b.TypeIDs, b.Last, int64(2*b.B), int64(b.T), train)
}

// LastScores runs score model m on right-padded ids (R, T) and returns the
// score of each row whose real tokens end at index last[r] (R), read where
// transformers reads it (model.Config.ScoreIndex: the last token that is
// not pad_token_id; an encoder's first token). Causal attention keeps the
// real tokens from seeing the padding after them, so a decoder needs no
// attention mask; an encoder gets one.
func LastScores(m *model.Model, ids, last []int64, R, T int64) *tensor.Tensor {
	return lastScores(m, ids, last, R, T, false)
}

// lastScores is LastScores, in training mode (dropout) when train is set.
func lastScores(m *model.Model, ids, last []int64, R, T int64, train bool) *tensor.Tensor {
	return scoresAt(m, ids, nil, last, R, T, train)
}

// scoresAt is lastScores with token type ids (R, T) for an encoder (nil: 0).
func scoresAt(m *model.Model, ids, types, last []int64, R, T int64, train bool) *tensor.Tensor {
	dev := m.Device
	read := make([]int64, R)
	for r := range read {
		row := ids[int64(r)*T : int64(r+1)*T]
		read[r] = int64(m.Config.ScoreIndex(int(last[r]), func(i int) int64 { return row[i] }))
	}
	in := &model.Input{IDs: tensor.FromInt64s(ids, R, T).To(tensor.Int64, dev), Train: train}
	if m.Config.Encoder() {
		// bidirectional attention: mask the pads after each row's last token
		mask := make([]int64, R*T)
		for r := range R {
			for t := int64(0); t <= last[r]; t++ {
				mask[r*T+t] = 1
			}
		}
		in.AttentionMask = tensor.FromInt64s(mask, R, T).To(tensor.Int64, dev)
		if types != nil {
			in.TokenTypeIDs = tensor.FromInt64s(types, R, T).To(tensor.Int64, dev)
		}
	}
	h := m.Hidden(in) // (R, T, H)
	H := h.Size(2)
	idx := tensor.FromInt64s(read, R, 1, 1).To(tensor.Int64, dev).Expand(R, 1, H) // (R, 1, H)
	hl := h.Gather(1, idx).Squeeze(1)                                             // (R, H)
	return m.ScoresFor(in, hl).Squeeze(1)                                         // (R)
}

// PairwiseLoss is TRL RewardTrainer.compute_loss (trl/trainer/reward_trainer.py):
//
//	loss = -mean(logsigmoid(r_chosen - r_rejected - margin))
//	     + center_rewards_coefficient * mean((r_chosen + r_rejected)^2)
//
// The first term is the Bradley-Terry pairwise loss (Ouyang et al. 2022,
// InstructGPT, Eq. 1) with Llama 2's optional margin (Touvron et al. 2023,
// Eq. 2); margins nil means 0. The second, added only when center is not
// nil, is the centring term of Eisenstein et al. 2023 (arXiv:2312.09244,
// Eq. 2). chosen and rejected are (B); the loss is computed in float64 and
// is a scalar.
func PairwiseLoss(chosen, rejected *tensor.Tensor, margins []float64, center *float64) *tensor.Tensor {
	rc, rr := chosen.ToDType(tensor.Float64), rejected.ToDType(tensor.Float64) // (B), (B)
	diff := rc.Sub(rr)                                                         // (B)
	if margins != nil {
		diff = diff.Sub(float64s(margins).To(tensor.Float64, rc.Device()))
	}
	loss := diff.LogSigmoid().Mean().Neg()
	if center != nil {
		loss = loss.Add(rc.Add(rr).Square().Mean().MulScalar(*center))
	}
	return loss
}

// Stats are TRL's reward metrics of one batch: accuracy (the fraction of
// pairs with r_chosen > r_rejected), margin (mean r_chosen - r_rejected)
// and min_reward, mean_reward, max_reward over chosen and rejected rewards.
func Stats(chosen, rejected []float64) map[string]float64 {
	n := len(chosen)
	if n == 0 || len(rejected) != n {
		return map[string]float64{}
	}
	var correct, margin, sum float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range chosen {
		c, r := chosen[i], rejected[i]
		if c > r {
			correct++
		}
		margin += c - r
		sum += c + r
		lo, hi = min(lo, c, r), max(hi, c, r)
	}
	return map[string]float64{
		"accuracy":    correct / float64(n),
		"margin":      margin / float64(n),
		"min_reward":  lo,
		"mean_reward": sum / float64(2*n),
		"max_reward":  hi,
	}
}

// float64s makes a CPU float64 tensor (len(v)) holding v exactly.
func float64s(v []float64) *tensor.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return tensor.FromBytes(b, []int64{int64(len(v))}, tensor.Float64)
}
