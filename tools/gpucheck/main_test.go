package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadMetrics: metrics.jsonl's rows of one step merge (the trainer
// logs a step's train and eval metrics in rows of their own).
func TestReadMetrics(t *testing.T) {
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	os.WriteFile(p, []byte(`{"step":1,"loss":2.5,"lr":0.001}
{"step":1,"eval_loss":3}
{"step":2,"loss":2.25}
`), 0o644)
	m, err := readMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[1]["loss"] != 2.5 || m[1]["eval_loss"] != 3 || m[2]["loss"] != 2.25 {
		t.Errorf("readMetrics = %v", m)
	}
	if _, err := readMetrics(filepath.Join(t.TempDir(), "none.jsonl")); err == nil {
		t.Error("a missing file: no error")
	}
}

// TestCompareMetrics: the worst relative difference |cuda-cpu|/max(1,|cpu|)
// over the keys and steps, by hand: step 2's loss 2 vs 2.0001 is 5e-5,
// grad_norm 0.5 vs 0.50002 is 2e-5 (absolute below 1); a missing key on
// cuda and no key at all are errors; NaN is infinitely far.
func TestCompareMetrics(t *testing.T) {
	cpu := map[int]map[string]float64{1: {"loss": 3, "grad_norm": 0.5}, 2: {"loss": 2, "grad_norm": 0.5}}
	cuda := map[int]map[string]float64{1: {"loss": 3, "grad_norm": 0.50002}, 2: {"loss": 2.0001, "grad_norm": 0.5}}
	worst, where, err := compareMetrics(cpu, cuda, []string{"loss", "grad_norm"})
	if err != nil || math.Abs(worst-5e-5) > 1e-12 || !strings.Contains(where, "loss at step 2") {
		t.Errorf("compareMetrics = %g %q %v, want 5e-5 at loss step 2", worst, where, err)
	}
	if _, _, err := compareMetrics(cpu, map[int]map[string]float64{1: {"loss": 3}}, []string{"grad_norm"}); err == nil {
		t.Error("cuda lacking a metric cpu logged: no error")
	}
	if _, _, err := compareMetrics(cpu, cuda, []string{"reward"}); err == nil {
		t.Error("no compared metric logged: no error")
	}
	if w, _, _ := compareMetrics(cpu, map[int]map[string]float64{1: {"loss": math.NaN()}, 2: {"loss": 2}}, []string{"loss"}); !math.IsInf(w, 1) {
		t.Errorf("NaN on cuda: worst %g", w)
	}
}

func tok(id int64, lp float64, top ...float64) genToken {
	g := genToken{ID: id, Logprob: lp}
	for i, v := range top {
		g.Top = append(g.Top, struct {
			ID      int64   `json:"id"`
			Logprob float64 `json:"logprob"`
		}{int64(i), v})
	}
	return g
}

// TestCompareGenerations: equal tokens count and their log-prob gap is
// the largest seen; a different token is accepted (and the row cut) only
// where the CPU's two best log-probs are within tieGap.
func TestCompareGenerations(t *testing.T) {
	cpu := [][]genToken{{tok(5, -1, -1, -3), tok(7, -2, -2, -2.0005), tok(9, -1)}, {tok(1, -0.5, -0.5, -2)}}
	cuda := [][]genToken{{tok(5, -1.00001, -1.00001, -3), tok(8, -2, -2, -2.0001), tok(3, -1)}, {tok(1, -0.5, -0.5, -2)}}
	same, ties, worst, err := compareGenerations(cpu, cuda)
	if err != nil || same != 2 || ties != 1 || math.Abs(worst-1e-5) > 1e-9 {
		t.Errorf("near tie: same %d ties %d worst %g err %v; want 2 1 1e-5 nil", same, ties, worst, err)
	}
	cpu[0][1] = tok(7, -2, -2, -2.5) // a clear winner: cuda's other token is a failure
	if _, _, _, err := compareGenerations(cpu, cuda); err == nil || !strings.Contains(err.Error(), "not a near tie") {
		t.Errorf("clear winner differs: %v", err)
	}
	if _, _, _, err := compareGenerations(cpu, cuda[:1]); err == nil {
		t.Error("row counts differ: no error")
	}
}
