package compare

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Group is one configuration run under one or more seeds: the runs in
// directories named alike (OUT/seed-42/dpo and OUT/seed-43/dpo, or
// dpo-seed42 and dpo-seed43), ordered by seed.
type Group struct {
	Name   string
	Method string
	Runs   []*Run
	Seeds  []int64 // per run; the run's seed setting, else the seed in its path
}

var (
	seedDirRE    = regexp.MustCompile(`^seed-?(\d+)$`)
	seedSuffixRE = regexp.MustCompile(`^(.+?)[-_]seed-?(\d+)$`)
)

// groupOf tells a run's configuration and seed from its directory: a
// parent folder seed-N (a sweep's layout) groups runs by their own base
// name; a base name NAME-seedN (or NAME_seedN) groups by NAME; any other
// run is a group of its own. The seed setting in rl_config.yaml, when there,
// wins over the seed in the path.
func groupOf(r *Run) (name string, seed int64, seeded bool) {
	dir := filepath.Clean(r.Dir)
	base, parent := filepath.Base(dir), filepath.Base(filepath.Dir(dir))
	name = r.Name
	if m := seedDirRE.FindStringSubmatch(parent); m != nil {
		name = base
		seed, _ = strconv.ParseInt(m[1], 10, 64)
		seeded = true
	} else if m := seedSuffixRE.FindStringSubmatch(base); m != nil {
		name = m[1]
		seed, _ = strconv.ParseInt(m[2], 10, 64)
		seeded = true
	}
	if v, ok := r.number("seed"); ok {
		seed, seeded = int64(v), true
	}
	return name, seed, seeded
}

// Groups groups runs into configurations (see groupOf), in the order their
// first runs come, each group's runs by seed. Runs of one group with the
// same seed stay apart: the second becomes a group of its own.
func Groups(runs []*Run) []*Group {
	var out []*Group
	byName := map[string]*Group{}
	for _, r := range runs {
		name, seed, _ := groupOf(r)
		g := byName[name]
		if g != nil && slices.Contains(g.Seeds, seed) {
			name = r.Name
			g = byName[name]
		}
		if g == nil {
			g = &Group{Name: name, Method: r.Method}
			byName[name] = g
			out = append(out, g)
		}
		if g.Method != r.Method {
			g.Method = "mixed"
		}
		g.Runs = append(g.Runs, r)
		g.Seeds = append(g.Seeds, seed)
	}
	for _, g := range out {
		idx := make([]int, len(g.Runs))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(g.Seeds[a], g.Seeds[b]) })
		runs, seeds := make([]*Run, len(idx)), make([]int64, len(idx))
		for i, j := range idx {
			runs[i], seeds[i] = g.Runs[j], g.Seeds[j]
		}
		g.Runs, g.Seeds = runs, seeds
	}
	return out
}

// metric is one per-run number summarised over seeds.
type metric struct {
	name  string
	value func(*Run) (float64, bool)
}

// statMetrics are the metrics summarised per configuration: the gold
// metric and its companions, then each table column's final value.
func statMetrics() []metric {
	ms := []metric{
		{"gold", func(r *Run) (float64, bool) {
			if r.Gold == nil {
				return 0, false
			}
			return r.Gold.Mean, true
		}},
		{"well-formed", func(r *Run) (float64, bool) {
			if r.Gold == nil || r.Gold.WellFormed == nil {
				return 0, false
			}
			return *r.Gold.WellFormed, true
		}},
		{"KL to ref", func(r *Run) (float64, bool) {
			if r.Gold == nil || r.Gold.KLToRef == nil {
				return 0, false
			}
			return *r.Gold.KLToRef, true
		}},
	}
	for _, c := range columns {
		ms = append(ms, metric{c.header + " (final)", func(r *Run) (float64, bool) {
			for _, k := range c.keys {
				if v, ok := lastValue(r.Entries, k); ok {
					return v, true
				}
			}
			return 0, false
		}})
	}
	ms = append(ms, metric{"wall time (s)", func(r *Run) (float64, bool) {
		return r.Runtime.Seconds(), r.Runtime > 0
	}})
	return ms
}

// values collects a metric over a group's runs (those that have it).
func (g *Group) values(m metric) []float64 {
	var xs []float64
	for _, r := range g.Runs {
		if v, ok := m.value(r); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	return xs
}

// goldSummary summarises a group's gold metric over its seeds.
func (g *Group) goldSummary() (Summary, bool) {
	xs := g.values(statMetrics()[0])
	return Summarize(xs), len(xs) > 0
}

// statsTable has one row per configuration and metric with a value: n,
// mean, sample std and the 95% t interval.
func statsTable(groups []*Group) *table {
	t := &table{header: []string{"configuration", "method", "metric", "n", "mean", "std", "95% CI", "per seed"}}
	for _, g := range groups {
		for _, m := range statMetrics() {
			xs := g.values(m)
			if len(xs) == 0 {
				continue
			}
			s := Summarize(xs)
			ci := none
			if s.N >= 2 {
				ci = fmt.Sprintf("[%s, %s]", num(s.Lo), num(s.Hi))
			}
			std := none
			if s.N >= 2 {
				std = num(s.Std)
			}
			method := g.Method
			if method == "" {
				method = none
			}
			t.rows = append(t.rows, []string{g.Name, method, m.name, strconv.Itoa(s.N), num(s.Mean), std, ci, perSeed(g, m)})
		}
	}
	return t
}

// perSeed lists a metric's value under each seed, "seed: value", in seed order.
func perSeed(g *Group, m metric) string {
	var parts []string
	for i, r := range g.Runs {
		if v, ok := m.value(r); ok {
			parts = append(parts, fmt.Sprintf("%d: %s", g.Seeds[i], num(v)))
		}
	}
	return strings.Join(parts, ", ")
}

// Pairing tells what a paired test paired.
const (
	PairPerPrompt = "per-prompt" // the gold score of each held-out prompt, pooled over the seeds both ran
	PairPerSeed   = "per-seed"   // each seed's gold mean
)

// GoldPair is a paired t-test of two configurations' gold metric.
type GoldPair struct {
	A, B    string
	Pairing string // PairPerPrompt or PairPerSeed
	Seeds   int    // seeds both configurations ran
	PairedTest
}

// PairGold tests the gold metric of a against b, pairing like with like:
// the score of each held-out prompt under the same seed (gold.json's
// prompt_scores), pooled over the seeds both ran, when every such seed has
// them for both with the same prompt count; else each seed's gold mean.
// ok is false when the two share no seed with a gold metric.
func PairGold(a, b *Group) (GoldPair, bool) {
	p := GoldPair{A: a.Name, B: b.Name, Pairing: PairPerPrompt}
	var xa, xb, ma, mb []float64
	for i, ra := range a.Runs {
		j := slices.Index(b.Seeds, a.Seeds[i])
		if j < 0 || ra.Gold == nil || b.Runs[j].Gold == nil {
			continue
		}
		ga, gb := ra.Gold, b.Runs[j].Gold
		p.Seeds++
		ma, mb = append(ma, ga.Mean), append(mb, gb.Mean)
		if len(ga.PromptScores) == 0 || len(ga.PromptScores) != len(gb.PromptScores) {
			p.Pairing = PairPerSeed
		}
		xa, xb = append(xa, ga.PromptScores...), append(xb, gb.PromptScores...)
	}
	if p.Seeds == 0 {
		return p, false
	}
	if p.Pairing == PairPerSeed {
		xa, xb = ma, mb
	}
	p.PairedTest = PairedT(xa, xb)
	return p, true
}

// pairedTable tests every pair of configurations with a gold metric.
func pairedTable(groups []*Group) (*table, []GoldPair) {
	var gs []*Group
	for _, g := range groups {
		if _, ok := g.goldSummary(); ok {
			gs = append(gs, g)
		}
	}
	t := &table{header: []string{"A", "B", "pairing", "seeds", "pairs", "mean A − B", "t", "df", "p (two-sided)", "verdict"}}
	var pairs []GoldPair
	for i := range gs {
		for j := i + 1; j < len(gs); j++ {
			p, ok := PairGold(gs[i], gs[j])
			if !ok || p.N < 2 {
				continue
			}
			pairs = append(pairs, p)
			verdict := "no difference at 5%"
			if p.P < 0.05 {
				better, worse := p.A, p.B
				if p.MeanDiff < 0 {
					better, worse = worse, better
				}
				verdict = better + " > " + worse + " at 5%"
			}
			t.rows = append(t.rows, []string{p.A, p.B, p.Pairing, strconv.Itoa(p.Seeds), strconv.Itoa(p.N),
				num(p.MeanDiff), num(p.T), strconv.Itoa(p.DF), pValue(p.P), verdict})
		}
	}
	return t, pairs
}

// pValue renders a p-value in three significant digits, small ones as "<1e-16".
func pValue(p float64) string {
	switch {
	case math.IsNaN(p):
		return "nan"
	case p < 1e-16:
		return "<1e-16"
	case p < 1e-3:
		return strconv.FormatFloat(p, 'e', 2, 64)
	}
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(p, 'f', 4, 64), "0"), ".")
}
