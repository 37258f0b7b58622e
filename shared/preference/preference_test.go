package preference

import (
	"math"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
)

func TestCollateMasksCompletionTokens(t *testing.T) {
	m := 0.5
	pairs := []Pair{
		{Chosen: []int32{1, 2, 3, 4, 5}, ChosenStart: 2, Rejected: []int32{1, 2, 6}, RejectedStart: 2, Margin: &m},
		{Chosen: []int32{7, 8}, ChosenStart: 1, Rejected: []int32{7, 9, 10}, RejectedStart: 1},
	}
	b := Collate(pairs, 0)
	if b.B != 2 || b.T != 5 {
		t.Fatalf("B, T = %d, %d, want 2, 5", b.B, b.T)
	}
	wantIDs := []int64{
		1, 2, 3, 4, 5, // pair 0 chosen
		7, 8, 0, 0, 0, // pair 1 chosen
		1, 2, 6, 0, 0, // pair 0 rejected
		7, 9, 10, 0, 0, // pair 1 rejected
	}
	// position t counts when token t+1 is a completion token
	wantMask := []float32{
		0, 1, 1, 1, 0,
		1, 0, 0, 0, 0,
		0, 1, 0, 0, 0,
		1, 1, 0, 0, 0,
	}
	for i := range wantIDs {
		if b.IDs[i] != wantIDs[i] || b.Completion[i] != wantMask[i] {
			t.Errorf("index %d: id %d mask %g, want %d %g", i, b.IDs[i], b.Completion[i], wantIDs[i], wantMask[i])
		}
	}
	wantLast := []int64{4, 1, 2, 2}
	for i, l := range wantLast {
		if b.Last[i] != l {
			t.Errorf("Last[%d] = %d, want %d", i, b.Last[i], l)
		}
	}
	if !b.HasMargin || b.Margins[0] != 0.5 || b.Margins[1] != 0 {
		t.Errorf("margins %v", b.Margins)
	}
}

// TestCompletionLogps compares with log-softmax computed in Go.
func TestCompletionLogps(t *testing.T) {
	pairs := []Pair{{Chosen: []int32{0, 1, 2}, ChosenStart: 1, Rejected: []int32{0, 2}, RejectedStart: 1}}
	b := Collate(pairs, 0)
	V := 3
	R, T := 2, b.T
	logits := make([]float32, R*T*V)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	logsm := func(r, t, tok int) float64 {
		row := logits[(r*T+t)*V : (r*T+t+1)*V]
		var z float64
		for _, x := range row {
			z += math.Exp(float64(x))
		}
		return float64(row[tok]) - math.Log(z)
	}
	want := []float64{logsm(0, 0, 1) + logsm(0, 1, 2), logsm(1, 0, 2)}
	tensor.Tidy(func() {
		lp := CompletionLogps(tensor.FromFloat32s(logits, int64(R), int64(T), int64(V)), b)
		got := lp.Sum.Float64s()
		cnt := lp.Count.Float64s()
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-5 {
				t.Errorf("row %d: sum logp %g, want %g", i, got[i], want[i])
			}
		}
		if cnt[0] != 2 || cnt[1] != 1 {
			t.Errorf("counts %v, want [2 1]", cnt)
		}
		// entropy and argmax accuracy over the same completion positions
		ent := func(r, t int) float64 {
			var h float64
			for k := range V {
				lp := logsm(r, t, k)
				h -= math.Exp(lp) * lp
			}
			return h
		}
		hit := func(r, t, tok int) float64 {
			row := logits[(r*T+t)*V : (r*T+t+1)*V]
			for _, x := range row {
				if x > row[tok] {
					return 0
				}
			}
			return 1
		}
		wantEnt := []float64{ent(0, 0) + ent(0, 1), ent(1, 0)}
		wantHit := []float64{hit(0, 0, 1) + hit(0, 1, 2), hit(1, 0, 2)}
		gotEnt, gotHit := lp.EntropySum.Float64s(), lp.Correct.Float64s()
		for i := range wantEnt {
			if math.Abs(gotEnt[i]-wantEnt[i]) > 1e-5 || gotHit[i] != wantHit[i] {
				t.Errorf("row %d: entropy %g correct %g, want %g %g", i, gotEnt[i], gotHit[i], wantEnt[i], wantHit[i])
			}
		}
		// every real token after the first: (0,0)->1, (0,1)->2; (1,0)->2
		if rs, rc := lp.RowSum.Float64s(), lp.RowCount.Float64s(); math.Abs(rs[0]-want[0]) > 1e-5 || rc[0] != 2 || rc[1] != 1 {
			t.Errorf("row sums %v counts %v", rs, rc)
		}
	})
}

// TestHeadCompletionLogps: through the chunked LM head, every field of
// Logps equals CompletionLogps of the whole logits, on rows long enough
// for two chunks.
func TestHeadCompletionLogps(t *testing.T) {
	tensor.ManualSeed(2)
	cfg, _ := model.Preset("tiny-llama", 61)
	cfg.NumLayers = 1
	m, err := model.New(cfg, model.LMHead, tensor.Float32, tensor.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	long := func(n, k int) []int32 {
		v := make([]int32, n)
		for i := range v {
			v[i] = int32((i*k + 1) % 61)
		}
		return v
	}
	b := Collate([]Pair{{Chosen: long(150, 7), ChosenStart: 30, Rejected: long(120, 11), RejectedStart: 30}}, 0)
	tensor.Tidy(func() {
		h := m.Hidden(b.Inputs(m.Device))
		want, got := CompletionLogps(m.Logits(h), b), HeadCompletionLogps(m, h, b)
		for _, f := range []struct {
			name string
			w, g *tensor.Tensor
		}{{"Sum", want.Sum, got.Sum}, {"Count", want.Count, got.Count}, {"RowSum", want.RowSum, got.RowSum},
			{"RowCount", want.RowCount, got.RowCount}, {"PerToken", want.PerToken, got.PerToken},
			{"MeanLogits", want.MeanLogits, got.MeanLogits}, {"EntropySum", want.EntropySum, got.EntropySum},
			{"Correct", want.Correct, got.Correct}} {
			w, g := f.w.Float64s(), f.g.Float64s()
			for i := range w {
				if math.Abs(w[i]-g[i]) > 1e-5*math.Max(1, math.Abs(w[i])) {
					t.Errorf("%s[%d]: chunked %g, whole logits %g", f.name, i, g[i], w[i])
				}
			}
		}
	})
}
