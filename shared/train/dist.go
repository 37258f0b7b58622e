package train

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

// Data parallel (a world of WORLD_SIZE > 1 ranks, started by rl launch or
// torchrun; package dist) follows DDP, DistributedSampler and
// transformers' Trainer:
//   - every rank starts from rank 0's parameters (broadcast);
//   - each rank reads its shard of every epoch's shuffled order (shard);
//     micro-batch k of the world holds the examples of a single process's
//     micro-batch k with a batch world times as large;
//   - gradients are averaged across ranks once per optimizer step, after
//     the last micro-batch's backward and before clipping;
//   - an ItemCounter task's micro-batch counts by its share of the items
//     of the whole world's step, times the world size (transformers'
//     average_tokens_across_devices: num_items_in_batch gathered across
//     processes, loss multiplied by num_processes), so the averaged
//     gradient is that of the single process's token mean;
//   - the logged loss and task metrics are averaged across ranks, tokens
//     summed; rank 0 alone writes logs, checkpoints and outputs;
//   - each rank evaluates its every world-th eval example (evalShard, no
//     padding: no example counts twice) and the example-weighted metric
//     sums are added across ranks, so the eval metrics are one process's
//     up to float summation order (with an eval set smaller than the
//     world, every rank evaluates all of it);
//   - an interrupt on any rank stops every rank at the same step.
// Every rank issues the same collectives in the same order: one per step
// (stepTotals), one gradient all-reduce, two per logging step, two per
// evaluation, a barrier per checkpoint.

func paramTensors(ps []model.Param) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(ps))
	for i, p := range ps {
		out[i] = p.T
	}
	return out
}

// stepTotals returns the micro-batches' loss weights, the step's tokens
// (the world's) and whether any rank was interrupted (stopHere on this
// one). In a world of one it is microWeights and this process's tokens.
func (t *Trainer[B]) stepTotals(batches []B, stopHere bool) (weights []float64, tokens int64, stop bool, err error) {
	for _, b := range batches {
		tokens += int64(b.NumTokens())
	}
	w := t.g.Size()
	if w <= 1 {
		return t.microWeights(batches), tokens, false, nil
	}
	ic, isIC := t.Task.(ItemCounter[B])
	items := make([]int, len(batches))
	local := 0
	if isIC {
		for i, b := range batches {
			items[i] = ic.NumItems(b)
			local += items[i]
		}
	}
	flag := 0.0
	if stopHere {
		flag = 1
	}
	sums, err := t.g.Sum([]float64{float64(local), float64(tokens), flag})
	if err != nil {
		return nil, 0, false, err
	}
	weights = make([]float64, len(batches))
	for i := range weights {
		switch {
		case !isIC:
			weights[i] = 1 / float64(len(batches))
		case sums[0] > 0:
			weights[i] = float64(items[i]) * float64(w) / sums[0]
		}
	}
	return weights, int64(sums[1]), sums[2] > 0, nil
}

// worldMean averages vals across ranks, except the keys in same (equal on
// every rank already). The ranks first check that they log the same keys.
func (t *Trainer[B]) worldMean(vals map[string]float64, same ...string) error {
	if t.g.Size() <= 1 {
		return nil
	}
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if !slices.Contains(same, k) {
			keys = append(keys, k)
		}
	}
	h := fnv.New64a()
	h.Write([]byte(strings.Join(keys, "\x00")))
	sig := []float64{float64(h.Sum64() >> 12), float64(len(keys))} // 52 bits: exact in a float64
	all, err := t.g.AllGather(sig)
	if err != nil {
		return err
	}
	for r, s := range all {
		if s[0] != sig[0] || s[1] != sig[1] {
			return fmt.Errorf("train: rank %d logs other metrics than rank %d (%s): the ranks disagree on what they computed", r, t.g.Rank, strings.Join(keys, ", "))
		}
	}
	v := make([]float64, len(keys))
	for i, k := range keys {
		v[i] = vals[k]
	}
	m, err := t.g.Mean(v)
	if err != nil {
		return err
	}
	for i, k := range keys {
		vals[k] = m[i]
	}
	return nil
}

// evalShard is this rank's eval examples: every world-th from its rank
// (DistributedSampler's cut without the padding, so that no example is
// counted twice), or all of them in a world of one or when the eval set
// is smaller than the world.
func (t *Trainer[B]) evalShard() []int {
	n, w, r := t.Eval.Len(), t.g.Size(), t.g.RankOf()
	if w <= 1 || n < w {
		w, r = 1, 0
	}
	var out []int
	for i := r; i < n; i += w {
		out = append(out, i)
	}
	return out
}

// worldSum adds acc's weighted sums and weights across ranks (the eval
// metrics), after checking that the ranks computed the same metrics.
func (t *Trainer[B]) worldSum(acc *metrics.Accumulator) error {
	sums, weights := acc.Snapshot()
	keys := slices.Sorted(maps.Keys(sums))
	h := fnv.New64a()
	h.Write([]byte(strings.Join(keys, "\x00")))
	vals := []float64{float64(h.Sum64() >> 12), float64(len(keys))}
	for _, k := range keys {
		vals = append(vals, sums[k], weights[k])
	}
	all, err := t.g.AllGather(vals[:2])
	if err != nil {
		return err
	}
	for r, s := range all {
		if s[0] != vals[0] || s[1] != vals[1] {
			return fmt.Errorf("train: rank %d evaluated other metrics than rank %d (%s)", r, t.g.Rank, strings.Join(keys, ", "))
		}
	}
	tot, err := t.g.Sum(vals[2:])
	if err != nil {
		return err
	}
	for i, k := range keys {
		sums[k], weights[k] = tot[2*i], tot[2*i+1]
	}
	acc.Restore(sums, weights)
	return nil
}

// saveCheckpointWorld saves on rank 0; the others wait until it is written.
func (t *Trainer[B]) saveCheckpointWorld(step int) error {
	var err error
	if t.g.IsMain() {
		err = t.saveCheckpoint(step)
	}
	if t.g.Size() > 1 {
		if berr := t.g.Barrier(); berr != nil {
			err = errors.Join(err, fmt.Errorf("train: %w", berr))
		}
	}
	return err
}
