package compare

import (
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/rlsuite/rl/shared/metrics"
)

// tab10 is matplotlib's palette, in the order metrics.PlotCompare uses it
// (by sorted run name), so a run has the same colour in every PNG.
var tab10 = []color.NRGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// writePlots writes one overlay PNG per shared metric and the gold bar
// chart into dir, returning their paths (gold.png first).
func writePlots(runs []*Run, groups []*Group, dir string) ([]string, error) {
	var paths []string
	used := map[string]bool{MarkdownFile: true, GoldPlotFile: true}
	if p, err := plotGold(goldBars(runs, groups), filepath.Join(dir, GoldPlotFile)); err != nil {
		return nil, err
	} else if p {
		paths = append(paths, filepath.Join(dir, GoldPlotFile))
	}
	byName := map[string][]metrics.Entry{}
	if slices.ContainsFunc(groups, func(g *Group) bool { return len(g.Runs) > 1 }) {
		// Over seeds: one line per configuration, its mean over seeds.
		for _, g := range groups {
			byName[g.Name] = meanEntries(g.Runs)
		}
	} else {
		for _, r := range runs {
			byName[r.Name] = r.Entries
		}
	}
	for _, m := range sharedMetrics(runs) {
		file := metrics.PlotFileName(m)
		for i := 2; used[file]; i++ {
			file = fmt.Sprintf("%s_%d.png", strings.TrimSuffix(metrics.PlotFileName(m), ".png"), i)
		}
		used[file] = true
		path := filepath.Join(dir, file)
		if err := metrics.PlotCompare(byName, m, path); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// goldBar is one bar of the gold chart: a value and its error bar.
type goldBar struct {
	label     string
	mean, err float64
	errIsCI   bool
}

// goldBars are the bars of the gold chart: with a configuration run under
// two or more seeds, one bar per configuration, its mean over seeds with
// the 95% interval; else one bar per run, its mean with one standard
// deviation over the samples.
func goldBars(runs []*Run, groups []*Group) []goldBar {
	var bars []goldBar
	seeded := slices.ContainsFunc(groups, func(g *Group) bool { return len(g.Runs) > 1 })
	if seeded {
		for _, g := range groups {
			s, ok := g.goldSummary()
			if !ok {
				continue
			}
			half := 0.0
			if s.N >= 2 {
				half = s.Hi - s.Mean
			}
			bars = append(bars, goldBar{label: fmt.Sprintf("%s (n=%d)", g.Name, s.N), mean: s.Mean, err: half, errIsCI: true})
		}
		return bars
	}
	for _, r := range runs {
		if r.Gold != nil {
			bars = append(bars, goldBar{label: r.Name, mean: r.Gold.Mean, err: r.Gold.Std})
		}
	}
	return bars
}

// plotGold draws the bars, each with its error bar and its mean printed
// above. It reports false, writing nothing, when there are none.
func plotGold(bars []goldBar, path string) (bool, error) {
	var names []string
	for _, b := range bars {
		names = append(names, b.label)
	}
	sorted := slices.Sorted(slices.Values(names))

	p := plot.New()
	p.Title.Text = "gold metric of the final model (mean ± std)"
	if len(bars) > 0 && bars[0].errIsCI {
		p.Title.Text = "gold metric over seeds (mean, 95% interval)"
	}
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Y.Label.Text = "gold"
	p.Add(plotter.NewGrid())
	var labels []string
	var errs errorBars
	var text plotter.XYLabels
	for _, gb := range bars {
		x := float64(len(labels))
		bar, err := plotter.NewBarChart(plotter.Values{gb.mean}, vg.Points(40))
		if err != nil {
			return false, fmt.Errorf("compare: gold plot: %w", err)
		}
		bar.XMin = x
		bar.Color = tab10[slices.Index(sorted, gb.label)%len(tab10)]
		bar.LineStyle.Width = 0
		p.Add(bar)
		labels = append(labels, gb.label)
		errs.XYs = append(errs.XYs, plotter.XY{X: x, Y: gb.mean})
		errs.YErrors = append(errs.YErrors, struct{ Low, High float64 }{gb.err, gb.err})
		text.XYs = append(text.XYs, plotter.XY{X: x, Y: gb.mean + gb.err})
		text.Labels = append(text.Labels, num(gb.mean))
	}
	if len(labels) == 0 {
		return false, nil
	}
	eb, err := plotter.NewYErrorBars(errs)
	if err != nil {
		return false, fmt.Errorf("compare: gold plot: %w", err)
	}
	eb.LineStyle.Width = vg.Points(1)
	lb, err := plotter.NewLabels(text)
	if err != nil {
		return false, fmt.Errorf("compare: gold plot: %w", err)
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = draw.XCenter
		lb.TextStyle[i].YAlign = draw.YBottom
	}
	lb.Offset = vg.Point{Y: vg.Points(3)}
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 80}
	p.Add(zero, eb, lb)
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	// Keep room above the printed means and include 0.
	p.Y.Min = min(p.Y.Min, 0)
	p.Y.Max = max(p.Y.Max, 0) + 0.12*(p.Y.Max-p.Y.Min+1e-9)

	c := vgimg.NewWith(vgimg.UseWH(metrics.PlotWidth, metrics.PlotHeight), vgimg.UseDPI(metrics.PlotDPI), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return false, fmt.Errorf("compare: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return false, fmt.Errorf("compare: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("compare: %w", err)
	}
	return true, nil
}

// errorBars feeds plotter.NewYErrorBars.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

// meanEntries averages the runs' logged values step by step: at each step,
// each metric's mean over the runs that logged it there.
func meanEntries(runs []*Run) []metrics.Entry {
	type acc struct{ sum, n map[string]float64 }
	bySteps := map[int]*acc{}
	for _, r := range runs {
		for _, e := range r.Entries {
			a := bySteps[e.Step]
			if a == nil {
				a = &acc{map[string]float64{}, map[string]float64{}}
				bySteps[e.Step] = a
			}
			for k, v := range e.Values {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					a.sum[k] += v
					a.n[k]++
				}
			}
		}
	}
	var out []metrics.Entry
	for _, step := range slices.Sorted(maps.Keys(bySteps)) {
		a := bySteps[step]
		e := metrics.Entry{Step: step, Values: map[string]float64{}}
		for k, v := range a.sum {
			e.Values[k] = v / a.n[k]
		}
		out = append(out, e)
	}
	return out
}
