package compare

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rlsuite/rl/shared/metrics"
)

// goldens are compare/testdata/stats_goldens.json, written once by
// tools/goldens/compare_stats.py: Python's statistics module for the mean
// and std, and a Simpson integration of the t density (no gonum) for the
// quantile and p-values.
type goldens struct {
	Summaries map[string]struct {
		X                       []float64
		Mean, Std, T975, Lo, Hi float64
	}
	Paired map[string]struct {
		A, B                    []float64
		MeanDiff, StdDiff, T, P float64
		DF                      int
	}
}

func readGoldens(t *testing.T) goldens {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "stats_goldens.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's keys are snake_case.
	s := strings.NewReplacer(`"mean_diff"`, `"MeanDiff"`, `"std_diff"`, `"StdDiff"`, `"t975"`, `"T975"`).Replace(string(b))
	var g goldens
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Summaries) == 0 || len(g.Paired) == 0 {
		t.Fatal("empty goldens")
	}
	return g
}

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestSummarizeGoldens(t *testing.T) {
	for name, w := range readGoldens(t).Summaries {
		s := Summarize(w.X)
		if s.N != len(w.X) || !close(s.Mean, w.Mean, 1e-12) || !close(s.Std, w.Std, 1e-12) {
			t.Errorf("%s: n %d mean %g std %g, want %d %g %g", name, s.N, s.Mean, s.Std, len(w.X), w.Mean, w.Std)
		}
		if q := tQuantile(0.975, float64(len(w.X)-1)); !close(q, w.T975, 1e-7) {
			t.Errorf("%s: t(0.975, %d) = %.12g, want %.12g", name, len(w.X)-1, q, w.T975)
		}
		if !close(s.Lo, w.Lo, 1e-7) || !close(s.Hi, w.Hi, 1e-7) {
			t.Errorf("%s: 95%% CI [%.10g, %.10g], want [%.10g, %.10g]", name, s.Lo, s.Hi, w.Lo, w.Hi)
		}
	}
}

// TestSummarizeByHand: 1, 2, 3 has mean 2, std 1, and the interval
// 2 ± t/√3 with t the 97.5% quantile of Student's t at 2 df, in closed
// form: F(t) = 1/2 + t/(2√(2+t²)) = 0.975 gives t = √2·0.95/√(1-0.95²)
// ≈ 4.3026527297.
func TestSummarizeByHand(t *testing.T) {
	s := Summarize([]float64{1, 2, 3})
	tq := math.Sqrt2 * 0.95 / math.Sqrt(1-0.95*0.95)
	half := tq / math.Sqrt(3)
	if s.Mean != 2 || !close(s.Std, 1, 1e-15) || !close(s.Lo, 2-half, 1e-9) || !close(s.Hi, 2+half, 1e-9) {
		t.Errorf("Summarize(1,2,3) = %+v, want mean 2 std 1 CI 2±%g", s, half)
	}
	one := Summarize([]float64{0.7})
	if one.Mean != 0.7 || !math.IsNaN(one.Std) || !math.IsNaN(one.Lo) || !math.IsNaN(one.Hi) {
		t.Errorf("one value: %+v, want mean 0.7 and NaN std and interval", one)
	}
	if e := Summarize(nil); e.N != 0 || !math.IsNaN(e.Mean) {
		t.Errorf("no values: %+v", e)
	}
}

func TestPairedTGoldens(t *testing.T) {
	for name, w := range readGoldens(t).Paired {
		p := PairedT(w.A, w.B)
		if p.N != len(w.A) || p.DF != w.DF || !close(p.MeanDiff, w.MeanDiff, 1e-12) || !close(p.StdDiff, w.StdDiff, 1e-12) || !close(p.T, w.T, 1e-10) {
			t.Errorf("%s: %+v, want mean diff %g std %g t %g df %d", name, p, w.MeanDiff, w.StdDiff, w.T, w.DF)
		}
		if !close(p.P, w.P, 1e-7) {
			t.Errorf("%s: p = %.10g, want %.10g", name, p.P, w.P)
		}
	}
}

// TestPairedTByHand: with 1 df, P(|T| > t) = 1 - 2·atan(t)/π (the Cauchy
// distribution); differences 1 and 3 give t = 2/(√2/√2) = 2.
func TestPairedTByHand(t *testing.T) {
	p := PairedT([]float64{2, 4}, []float64{1, 1})
	want := 1 - 2*math.Atan(2)/math.Pi
	if p.DF != 1 || !close(p.T, 2, 1e-12) || !close(p.P, want, 1e-10) {
		t.Errorf("PairedT = %+v, want t 2 df 1 p %g", p, want)
	}
	// Equal differences: the test is degenerate, and says so by ±Inf.
	if p := PairedT([]float64{1, 2, 3}, []float64{0, 1, 2}); !math.IsInf(p.T, 1) || p.P != 0 {
		t.Errorf("constant difference: %+v, want t +Inf p 0", p)
	}
	if p := PairedT([]float64{1, 2}, []float64{1, 2}); p.T != 0 || p.P != 1 {
		t.Errorf("no difference: %+v, want t 0 p 1", p)
	}
	if p := PairedT([]float64{1}, []float64{0}); p.N != 1 || !math.IsNaN(p.T) || !math.IsNaN(p.P) {
		t.Errorf("one pair: %+v, want NaN t and p", p)
	}
}

// seedRun writes OUT/seed-S/NAME with a config and a gold.json.
func seedRun(t *testing.T, root, name string, seed int, mean float64, prompts []float64) string {
	t.Helper()
	g := map[string]any{"gold_mean": mean, "gold_std": 0.1, "n": 8}
	if prompts != nil {
		g["prompt_scores"] = prompts
	}
	b, _ := json.Marshal(g)
	method := map[string]string{"dpo": "beta: 0.1\nloss_type: [sigmoid]\n", "orpo": "beta: 0.5\n"}[name]
	return writeRun(t, filepath.Join(root, "seed-"+strconv.Itoa(seed)), name, map[string]string{
		"rl_config.yaml": "seed: " + strconv.Itoa(seed) + "\nlearning_rate: 1.0e-04\n" + method,
		"metrics.jsonl":  `{"step":1,"loss":` + strconv.FormatFloat(1-mean, 'g', -1, 64) + `}` + "\n",
		"gold.json":      string(b),
	})
}

// TestGroupsAndPairs: runs under seed-N/ group by name, summarise over
// seeds, and pair per prompt when every seed has prompt_scores, else per
// seed; the report carries the numbers.
func TestGroupsAndPairs(t *testing.T) {
	root := t.TempDir()
	a1 := []float64{0.9, 0.4, 0.7}
	b1 := []float64{0.5, 0.5, 0.2}
	a2 := []float64{0.8, 0.3, 0.6}
	b2 := []float64{0.6, 0.1, 0.4}
	dirs := []string{
		seedRun(t, root, "dpo", 43, 0.6, b2), seedRun(t, root, "orpo", 43, 0.5667, a2),
		seedRun(t, root, "dpo", 42, 0.4, b1), seedRun(t, root, "orpo", 42, 0.6667, a1),
	}
	runs := loadAll(t, dirs)
	groups := Groups(runs)
	if len(groups) != 2 || groups[0].Name != "dpo" || groups[1].Name != "orpo" {
		t.Fatalf("groups %v", groupNames(groups))
	}
	if s := groups[0].Seeds; s[0] != 42 || s[1] != 43 {
		t.Errorf("dpo seeds %v, want sorted 42 43", s)
	}
	p, ok := PairGold(groups[1], groups[0])
	if !ok || p.Pairing != PairPerPrompt || p.Seeds != 2 || p.N != 6 {
		t.Fatalf("pair %+v", p)
	}
	// The same numbers as the golden "small" case, seed 42's prompts first.
	w := readGoldens(t).Paired["small"]
	if !close(p.T, w.T, 1e-10) || !close(p.P, w.P, 1e-7) || p.DF != 5 {
		t.Errorf("per-prompt pair t %g p %g df %d, want %g %g 5", p.T, p.P, p.DF, w.T, w.P)
	}

	// Without prompt_scores in one seed the test pairs the per-seed means.
	dirs[0] = seedRun(t, root, "dpo", 43, 0.6, nil)
	groups = Groups(loadAll(t, dirs))
	p, _ = PairGold(groups[1], groups[0])
	want := PairedT([]float64{0.6667, 0.5667}, []float64{0.4, 0.6})
	if p.Pairing != PairPerSeed || p.N != 2 || !close(p.T, want.T, 1e-12) {
		t.Errorf("per-seed pair %+v, want %+v", p, want)
	}

	out := filepath.Join(t.TempDir(), "cmp")
	res, err := Report(dirs, Options{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	md := res.Markdown
	t.Logf("%s", md)
	gs := Summarize([]float64{0.4, 0.6})
	for _, want := range []string{
		"## Over seeds", "| dpo | dpo | gold | 2 | 0.5 | " + num(gs.Std) + " | [" + num(gs.Lo) + ", " + num(gs.Hi) + "] | 42: 0.4, 43: 0.6 |",
		"## Paired tests on gold", "| dpo | orpo | per-seed | 2 | 2 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("comparison.md lacks %q", want)
		}
	}
	if len(res.Pairs) != 1 || res.Pairs[0].A != "dpo" {
		t.Errorf("Result.Pairs %+v", res.Pairs)
	}
}

func TestGroupOf(t *testing.T) {
	for _, c := range []struct {
		dir, config, name string
		seed              int64
	}{
		{"out/seed-7/dpo", "", "dpo", 7},
		{"out/dpo-seed3", "", "dpo", 3},
		{"out/orpo_seed12", "", "orpo", 12},
		{"out/seed-7/dpo", "seed: 9\n", "dpo", 9},
		{"out/dpo", "seed: 5\n", "dpo", 5},
	} {
		root := t.TempDir()
		files := map[string]string{}
		if c.config != "" {
			files["rl_config.yaml"] = c.config
		}
		dir := writeRun(t, root, c.dir, files)
		r, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if name, seed, _ := groupOf(r); name != c.name || seed != c.seed {
			t.Errorf("%s: group %q seed %d, want %q %d", c.dir, name, seed, c.name, c.seed)
		}
	}
}

func loadAll(t *testing.T, dirs []string) []*Run {
	t.Helper()
	var runs []*Run
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	uniqueNames(runs)
	return runs
}

func groupNames(gs []*Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// TestMeanEntries: the seed-averaged curve is the mean per step and metric
// over the runs that logged it there.
func TestMeanEntries(t *testing.T) {
	a := &Run{Entries: []metrics.Entry{{Step: 1, Values: map[string]float64{"loss": 2}}, {Step: 2, Values: map[string]float64{"loss": 1, "eval_loss": 3}}}}
	b := &Run{Entries: []metrics.Entry{{Step: 1, Values: map[string]float64{"loss": 4}}, {Step: 2, Values: map[string]float64{"loss": 2, "x": math.NaN()}}}}
	got := meanEntries([]*Run{a, b})
	if len(got) != 2 || got[0].Step != 1 || got[0].Values["loss"] != 3 || got[1].Values["loss"] != 1.5 || got[1].Values["eval_loss"] != 3 {
		t.Errorf("meanEntries = %+v", got)
	}
	if _, ok := got[1].Values["x"]; ok {
		t.Error("a NaN made a value")
	}
}
