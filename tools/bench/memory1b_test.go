package main

import (
	"math"
	"testing"
)

// TestMemTargets: issue 13's ratios from hand-made runs (figures by hand):
// QLoRA 2 GB over a full run killed at 20 GB is 0.1, an upper bound that
// passes; checkpointing's activation cut is 1 - act_gc/act with act = peak
// - RSS before the first step - gradients - AdamW moments; its extra time
// the mean step after the warm-up over the plain run's, less 1.
func TestMemTargets(t *testing.T) {
	const gb = 1 << 20 // KB
	runs := map[string]*memRun{
		"qlora_nf4": {PeakKB: 2 * gb, PlanRSSKB: 1 * gb, StepS: []float64{99, 10, 10}},
		"full":      {PeakKB: 20 * gb, Killed: "killed at 20 GB"},
		// lora: act = 9 - 4 - (0.5+0.5) = 4 GB; with gc 5 - 4 - 0 = 1 GB (a 0.75 cut), (25+31)/2 / 20 - 1 = 0.4 more time
		"lora":    {PeakKB: 9 * gb, PlanRSSKB: 4 * gb, Plan: memPlan{Gradients: 1 << 29, Optimizer: 1 << 29}, StepS: []float64{50, 20, 20}},
		"lora+gc": {PeakKB: 5 * gb, PlanRSSKB: 4 * gb, Plan: memPlan{}, StepS: []float64{1, 25, 31}},
		// dpo: 6 / 10
		"dpo_lora+gc_ref_adapter": {PeakKB: 6 * gb},
		"dpo_lora+gc_ref_copy":    {PeakKB: 10 * gb},
	}
	want := map[string]struct {
		v    float64
		pass bool
	}{
		"qlora_over_full_peak qlora_nf4 / full": {0.1, true},
		"gc_activation_cut lora":                {0.75, true},
		"gc_extra_time lora":                    {0.4, true},
		"dpo_adapter_ref_over_copy_peak dpo_lora+gc_ref_adapter / dpo_lora+gc_ref_copy": {0.6, true},
	}
	got := map[string]bool{}
	for _, r := range memTargets(runs) {
		k := r.Name + " " + r.Config
		w, ok := want[k]
		if !ok {
			t.Errorf("unexpected row %s = %g", k, r.RL)
			continue
		}
		got[k] = true
		if math.Abs(r.RL-w.v) > 1e-9 || r.Pass == nil || *r.Pass != w.pass {
			t.Errorf("%s = %g pass %v, want %g pass %v", k, r.RL, r.Pass != nil && *r.Pass, w.v, w.pass)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no row %s", k)
		}
	}
	runs["lora+gc"].PeakKB = 7 * gb // act 3 GB: a 0.25 cut misses
	for _, r := range memTargets(runs) {
		if r.Name == "gc_activation_cut" && (r.RL != 0.25 || *r.Pass) {
			t.Errorf("cut %g pass %v, want 0.25 and a miss", r.RL, *r.Pass)
		}
	}
}

// TestStepLineRE: the step lines rl's trainer logs are timed, its summary
// line (train_loss) is not.
func TestStepLineRE(t *testing.T) {
	for line, want := range map[string]bool{
		"step 1/2 (50%) epoch 0.002331 loss 6.11 lr 1e-05 entropy 6.047":                 true,
		"step 12/300 (4%) epoch 0.1 loss 2.5":                                            true,
		"step 2/2 (100%) train_loss 5.975 train_runtime 0.1708 train_steps_per_second 1": false,
		"memory plan": false,
	} {
		if got := stepLineRE.MatchString(line); got != want {
			t.Errorf("%q: matched %v, want %v", line, got, want)
		}
	}
}
