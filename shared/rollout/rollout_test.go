package rollout

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/model"
)

func TestCompletionStats(t *testing.T) {
	p := &Prompt{IDs: []int{1}}
	cs := []*Completion{
		{Prompt: p, IDs: []int{1, 2, 3}, Terminated: true},
		{Prompt: p, IDs: []int{1, 2, 3, 4, 5}, Terminated: false},
		{Prompt: p, IDs: []int{1}, Terminated: true},
		{Prompt: p, IDs: []int{1, 2, 3, 4, 5}, Terminated: false},
	}
	want := map[string]float64{
		"completions/mean_length": 14.0 / 4, "completions/min_length": 1, "completions/max_length": 5,
		"completions/clipped_ratio": 0.5, "completions/mean_terminated_length": 2,
		"completions/min_terminated_length": 1, "completions/max_terminated_length": 3,
	}
	got := CompletionStats(cs)
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-12 {
			t.Errorf("%s = %g, want %g", k, got[k], v)
		}
	}
	// none terminated: TRL's terminated lengths are 0
	got = CompletionStats(cs[1:2])
	if got["completions/mean_terminated_length"] != 0 || got["completions/max_terminated_length"] != 0 || got["completions/clipped_ratio"] != 1 {
		t.Errorf("no terminated completion: %v", got)
	}
}

// TestSchedule: which micro-batches generate, which slice each step gets,
// TRL's old-log-prob condition and the resumable steps.
func TestSchedule(t *testing.T) {
	cases := []struct {
		gas, spg, iters int
		steps           int
		wantGens        []int // generation index at each generating micro-batch, in order
		wantSlices      []int // slice index of each micro-batch
		needOld         bool
		resumable       []int
	}{
		// TRL's default: one generation per optimizer step
		{2, 2, 1, 3, []int{0, 1, 2}, []int{0, 1, 0, 1, 0, 1}, false, []int{0, 1, 2}},
		// steps_per_generation 4 > GAS 2: a generation spans 2 steps
		{2, 4, 1, 4, []int{0, 1}, []int{0, 1, 2, 3, 0, 1, 2, 3}, true, []int{0, 2}},
		// num_iterations 2: each slice used twice
		{1, 2, 2, 4, []int{0}, []int{0, 1, 0, 1}, true, []int{0}},
		// two generations inside one optimizer step (GAS 4, spg 2): aligned
		{4, 2, 1, 2, []int{0, 1, 2, 3}, []int{0, 1, 0, 1, 0, 1, 0, 1}, false, []int{0, 1}},
	}
	for _, c := range cases {
		s := Schedule[int]{GAS: c.gas, StepsPerGeneration: c.spg, NumIterations: c.iters}
		var gens, slicesGot []int
		for step := 0; step < c.steps; step++ {
			err := s.Begin(step, func(g int) ([]int, error) {
				gens = append(gens, g)
				out := make([]int, c.spg*3) // 3 samples per micro-batch, valued by slice
				for i := range out {
					out[i] = 100*g + i/3
				}
				return out, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for range c.gas {
				b, err := s.Next()
				if err != nil || len(b) != 3 {
					t.Fatalf("%+v: Next = %v, %v", c, b, err)
				}
				slicesGot = append(slicesGot, b[0]%100)
			}
			if _, err := s.Next(); err == nil {
				t.Errorf("%+v: more micro-batches than GAS queued", c)
			}
		}
		if !slices.Equal(gens, c.wantGens) || !slices.Equal(slicesGot, c.wantSlices) {
			t.Errorf("gas %d spg %d iters %d: generations %v slices %v, want %v %v", c.gas, c.spg, c.iters, gens, slicesGot, c.wantGens, c.wantSlices)
		}
		if s.NeedOld() != c.needOld {
			t.Errorf("gas %d spg %d iters %d: NeedOld %v, want %v", c.gas, c.spg, c.iters, s.NeedOld(), c.needOld)
		}
		var res []int
		for step := 0; step < c.steps; step++ {
			if s.ResumableAt(step) == nil {
				res = append(res, step)
			}
		}
		if !slices.Equal(res, c.resumable) {
			t.Errorf("gas %d spg %d iters %d: resumable at %v, want %v", c.gas, c.spg, c.iters, res, c.resumable)
		}
	}
	// a fresh schedule (a resume) inside a generation is an error, not a panic
	s := Schedule[int]{GAS: 1, StepsPerGeneration: 2, NumIterations: 1}
	if err := s.Begin(1, func(int) ([]int, error) { return nil, nil }); err == nil || !strings.Contains(err.Error(), "inside a generation batch") {
		t.Errorf("Begin(1) without a generation: %v", err)
	}
}

func TestPromptsForCoversEachEpoch(t *testing.T) {
	ps := make([]Prompt, 6)
	for i := range ps {
		ps[i].Text = string(rune('a' + i))
	}
	seen := map[string]int{}
	for g := 0; g < 3; g++ { // 3 generations of 2 prompts: one epoch
		for _, p := range PromptsFor(ps, 7, g, 2, true) {
			seen[p.Text]++
		}
	}
	if len(seen) != 6 {
		t.Errorf("one epoch drew %v, want each prompt once", seen)
	}
	a, b := PromptsFor(ps, 7, 1, 2, true), PromptsFor(ps, 7, 1, 2, true)
	if a[0] != b[0] || a[1] != b[1] {
		t.Error("PromptsFor is not reproducible")
	}
	if got := PromptsFor(ps, 7, 1, 2, false); got[0] != &ps[2] || got[1] != &ps[3] {
		t.Error("without shuffle: want prompts in order")
	}
}

func TestWindowMeansAndJSON(t *testing.T) {
	var w Window
	w.Add(map[string]float64{"a": 1, "b": math.NaN()})
	w.Add(map[string]float64{"a": 3, "b": 2})
	b, err := json.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	var r Window
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	r.Flush(vals)
	if vals["a"] != 2 || vals["b"] != 2 {
		t.Errorf("means %v, want a 2 b 2 (NaN skipped)", vals)
	}
	vals = map[string]float64{}
	r.Flush(vals)
	if len(vals) != 0 {
		t.Errorf("a flushed window still gives %v", vals)
	}
}

// TestCmdReward: an external program reads JSONL (prompt, completion and
// the row's columns) and writes a number or null per line; failures and
// wrong line counts are errors naming the program.
func TestCmdReward(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := script("score.sh", `while IFS= read -r l; do
  case "$l" in
    *'"completion":"good'*'"gold":"yes"'*|*'"gold":"yes"'*'"completion":"good'*) echo 1 ;;
    *skip*) echo null ;;
    *) echo 0.25 ;;
  esac
done
`)
	rs, err := LoadRewards([]string{"cmd:" + ok}, "reward_funcs", nil, nil, "", model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Name != "score.sh" {
		t.Errorf("name %q, want score.sh", rs[0].Name)
	}
	p := &Prompt{Text: "q", Row: map[string]any{"gold": "yes"}}
	cs := []*Completion{{Prompt: p, Text: "good one"}, {Prompt: p, Text: "bad"}, {Prompt: p, Text: "skip"}}
	v, err := rs[0].Score(cs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != 1 || v[1] != 0.25 || !math.IsNaN(v[2]) {
		t.Errorf("scores %v, want [1 0.25 NaN]", v)
	}
	for _, c := range []struct{ body, want string }{
		{"echo oops >&2; exit 3\n", "oops"},
		{"echo 1\n", "wrote 1 lines for 3 completions"},
		{"cat >/dev/null; printf 'a\\nb\\nc\\n'\n", `line 1 is "a"`},
	} {
		r := &Reward{Name: "bad", Cmd: []string{script("bad.sh", c.body)}}
		if _, err := r.Score(cs, 0); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.sh") {
			t.Errorf("%q: err %v, want %q naming bad.sh", c.body, err, c.want)
		}
	}
	if _, err := LoadRewards([]string{"cmd:/no/such/program"}, "reward_funcs", nil, nil, "", model.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "reward_funcs cmd:/no/such/program") {
		t.Errorf("missing program: %v", err)
	}
}
