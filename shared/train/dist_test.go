package train

import (
	"slices"
	"testing"

	"github.com/rlsuite/rl/shared/dist"
)

// TestShardIsDistributedSampler: torch.utils.data.DistributedSampler
// (drop_last=False) pads the order with its own head to a multiple of the
// world and gives rank r every world-th index from r:
// indices += indices[:padding]; indices[rank:total_size:num_replicas]
// (the goldens are torch 1.13's DistributedSampler(range(5), shuffle=False)
// mapped through perm).
func TestShardIsDistributedSampler(t *testing.T) {
	perm := []int{4, 0, 3, 1, 2} // n=5
	for _, c := range []struct {
		rank, w int
		want    []int
	}{
		{0, 2, []int{4, 3, 2}},
		{1, 2, []int{0, 1, 4}}, // padded with perm[0]
		{0, 1, perm},
		{2, 3, []int{3, 4}},
		{1, 4, []int{0, 4}}, // total 8: padded with 4 0 3
		{0, 8, []int{4}},    // padded more than once
		{7, 8, []int{3}},
	} {
		if got := shard(perm, c.rank, c.w); !slices.Equal(got, c.want) {
			t.Errorf("shard(rank %d of %d) = %v, want %v", c.rank, c.w, got, c.want)
		}
	}
	// the ranks' micro-batch k together are the single process's batch k
	// of w times the size
	perm = []int{9, 3, 7, 1, 0, 8, 2, 6, 4, 5, 11, 10}
	for k := range 3 {
		var union []int
		for r := range 2 {
			union = append(union, shard(perm, r, 2)[2*k:2*k+2]...)
		}
		slices.Sort(union)
		one := slices.Clone(perm[4*k : 4*k+4])
		slices.Sort(one)
		if !slices.Equal(union, one) {
			t.Errorf("micro-batch %d: ranks %v, one process %v", k, union, one)
		}
	}
}

type sizedData int

func (d sizedData) Len() int                   { return int(d) }
func (sizedData) Batch([]int) (lmBatch, error) { return lmBatch{}, nil }

// TestEvalShard: in a world of w each rank evaluates every w-th example
// from its rank, without DistributedSampler's padding (no example counts
// twice; together the ranks cover the set once); an eval set smaller than
// the world is evaluated whole by every rank (so every rank has batches
// and the same metrics to reduce).
func TestEvalShard(t *testing.T) {
	for _, c := range []struct {
		n, w int
		want [][]int
	}{
		{3, 2, [][]int{{0, 2}, {1}}},
		{7, 3, [][]int{{0, 3, 6}, {1, 4}, {2, 5}}},
		{1, 2, [][]int{{0}, {0}}},
		{4, 1, [][]int{{0, 1, 2, 3}}},
	} {
		for r := range c.w {
			tr := &Trainer[lmBatch]{Eval: sizedData(c.n)}
			if c.w > 1 {
				tr.g = &dist.Group{Env: dist.Env{WorldSize: c.w, Rank: r}} // never opened: evalShard runs no collective
			}
			if got := tr.evalShard(); !slices.Equal(got, c.want[r]) {
				t.Errorf("%d examples, rank %d of %d: %v, want %v", c.n, r, c.w, got, c.want[r])
			}
		}
	}
}
