package train

import (
	"slices"
	"strings"
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

type onlineTask struct{ lmTask }

func (onlineTask) BeginStep(int) error { return nil }

// TestWorldRefusesOnlineTasks: PPO, GRPO and RLOO (tasks that start each
// step with a rollout) refuse a world > 1 with a message, not a hang.
func TestWorldRefusesOnlineTasks(t *testing.T) {
	world := &dist.Group{Env: dist.Env{WorldSize: 2}} // never opened: checkWorld runs no collective
	m := tinyLM(t)
	defer m.Free()
	tr := &Trainer[lmBatch]{Task: onlineTask{lmTask{m}}, Name: "grpo", g: world}
	err := tr.checkWorld()
	if err == nil || !strings.Contains(err.Error(), "rl grpo does not train data-parallel yet (WORLD_SIZE=2)") {
		t.Fatalf("err = %v, want a refusal naming rl grpo and WORLD_SIZE=2", err)
	}
	tr = &Trainer[lmBatch]{Task: lmTask{m}, Name: "sft", g: world}
	if err := tr.checkWorld(); err != nil {
		t.Errorf("sft in a world of 2: %v", err)
	}
}
