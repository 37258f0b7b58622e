package model

import (
	"testing"

	"github.com/rlsuite/rl/shared/tensor"
)

// TestSharedPrefixMatchesCopies: after a prefill of two distinct prompts,
// Share(rows) (each prompt's keys and values stored once) and
// Select(rows) (copied to every row) give the same logits step after
// step, with the fused attention and with the op path (which assembles
// each row's keys from the prefix), for GPT-2 and a grouped-query Llama,
// with a left-padded prompt, and after compaction drops rows.
func TestSharedPrefixMatchesCopies(t *testing.T) {
	for _, preset := range []string{"tiny", "tiny-llama"} {
		for _, unfused := range []bool{false, true} {
			cfg, err := Preset(preset, 53)
			if err != nil {
				t.Fatal(err)
			}
			cfg.NumLayers = 2
			tensor.ManualSeed(4)
			m, err := New(cfg, LMHead, tensor.Float32, tensor.CPU)
			if err != nil {
				t.Fatal(err)
			}
			rows := []int64{0, 0, 1, 0, 1, 1}
			mask := [][]int64{{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}} // prompt 1 is left-padded
			shared, copied := m.NewKVCache(), m.NewKVCache()
			tensor.NoGrad(func() {
				tensor.Tidy(func() {
					ids := tensor.FromInt64s([]int64{5, 9, 13, 2, 7, 0, 0, 8, 1, 3}, 2, 5)
					am := tensor.FromInt64s([]int64{1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 2, 5)
					for _, c := range []*KVCache{shared, copied} {
						m.Hidden(&Input{IDs: ids, AttentionMask: am, Cache: c})
					}
				})
				shared.Share(rows)
				tensor.Tidy(func() { copied.Select(tensor.FromInt64s(rows, int64(len(rows)))) })
				if shared.Len() != 5 || copied.Len() != 5 {
					t.Fatalf("Len: shared %d, copied %d, want 5", shared.Len(), copied.Len())
				}
				var rowMask [][]int64
				for _, r := range rows {
					rowMask = append(rowMask, append([]int64(nil), mask[r]...))
				}
				next := []int64{4, 5, 6, 7, 8, 9}
				for step := 0; step < 6; step++ {
					if step == 3 { // rows 1 and 4 finish and leave the batch
						keep := []int64{0, 2, 3, 5}
						tensor.Tidy(func() {
							idx := tensor.FromInt64s(keep, int64(len(keep)))
							shared.Select(idx)
							copied.Select(idx)
						})
						var nm [][]int64
						var nn []int64
						for _, i := range keep {
							nm, nn = append(nm, rowMask[i]), append(nn, next[i])
						}
						rowMask, next = nm, nn
					}
					tensor.Tidy(func() {
						for i := range rowMask {
							rowMask[i] = append(rowMask[i], 1)
						}
						R, L := int64(len(rowMask)), int64(len(rowMask[0]))
						var flat []int64
						for _, r := range rowMask {
							flat = append(flat, r...)
						}
						am := tensor.FromInt64s(flat, R, L)
						ids := tensor.FromInt64s(next, R, 1)
						a := m.Logits(m.Hidden(&Input{IDs: ids, AttentionMask: am, Cache: shared, Unfused: unfused}))
						b := m.Logits(m.Hidden(&Input{IDs: ids, AttentionMask: am, Cache: copied, Unfused: unfused}))
						if d := a.Sub(b).Abs().Max().Item(); !(d <= 1e-5) {
							t.Errorf("%s unfused=%v step %d: shared and copied prefix logits differ by %g", preset, unfused, step, d)
						}
						for i := range next {
							next[i] = (next[i]*7 + int64(step)) % 53
						}
					})
				}
			})
			if shared.Len() != 11 {
				t.Errorf("%s: Len after 6 steps = %d, want 11", preset, shared.Len())
			}
			shared.Free()
			copied.Free()
			m.Free()
		}
	}
}
