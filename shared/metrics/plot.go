package metrics

import (
	"errors"
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot geometry: each single-metric PNG is PlotWidth x PlotHeight at PlotDPI
// (1200x675 pixels); each overview.png panel is overviewTile.
const (
	PlotWidth  = 8 * vg.Inch
	PlotHeight = 4.5 * vg.Inch
	PlotDPI    = 150
)

var overviewTile = vg.Point{X: 5.5 * vg.Inch, Y: 3.4 * vg.Inch}

// overviewMetrics lists, in order of preference, the metrics overview.png
// shows before filling up with the others alphabetically (6 panels at most).
var overviewMetrics = []string{
	"loss", "eval_loss", "learning_rate", "grad_norm",
	"reward", "rewards/accuracies", "rewards/margins", "kl", "objective/kl",
	"entropy", "eval_rewards/accuracies", "rewards/chosen", "rewards/rejected",
}

const overviewMax = 6

// Colours from the matplotlib "tab10" palette, so plots look familiar to TRL users.
var palette = []color.NRGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

func paletteColor(i int, alpha uint8) color.NRGBA {
	c := palette[i%len(palette)]
	c.A = alpha
	return c
}

// series is one metric of one run: finite (step, value) points in log order.
type series struct {
	xy plotter.XYs
	// total is the number of distinct logged steps in the run, to tell sparse series (eval metrics) from dense ones.
	total int
}

func extract(entries []Entry, metric string) series {
	var s series
	steps := map[int]bool{}
	for _, e := range entries {
		steps[e.Step] = true
		v, ok := e.Values[metric]
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s.xy = append(s.xy, plotter.XY{X: float64(e.Step), Y: v})
	}
	s.total = len(steps)
	return s
}

// sparse reports whether the series should be drawn with point markers:
// few points, or logged at fewer than half of the run's steps.
func (s series) sparse() bool { return len(s.xy) <= 60 || 2*len(s.xy) < s.total }

// smoothing returns the EMA weight to overlay a smoothed curve on a noisy
// dense series, or 0 for none: the weight grows with the number of points so
// that a smoothed point averages about 1/30 of the run.
func (s series) smoothing(metric string) float64 {
	n := len(s.xy)
	if n < 60 || scheduleLike(metric) || monotone(s.xy) {
		return 0
	}
	w := 1 - 30/float64(n)
	return min(w, 0.98)
}

func scheduleLike(metric string) bool {
	m := strings.ToLower(metric)
	return m == "epoch" || m == "lr" || strings.Contains(m, "learning_rate") || strings.HasPrefix(m, "num_") || strings.Contains(m, "total_flos")
}

func monotone(xy plotter.XYs) bool {
	up, down := true, true
	for i := 1; i < len(xy); i++ {
		up = up && xy[i].Y >= xy[i-1].Y
		down = down && xy[i].Y <= xy[i-1].Y
	}
	return up || down
}

// ema is TensorBoard's debiased exponential moving average with weight w.
func ema(xy plotter.XYs, w float64) plotter.XYs {
	out := make(plotter.XYs, len(xy))
	last, norm := 0.0, 0.0
	for i, p := range xy {
		last = w*last + (1-w)*p.Y
		norm = w*norm + (1 - w)
		out[i] = plotter.XY{X: p.X, Y: last / norm}
	}
	return out
}

// addSeries draws s on p in palette colour ci: a line, plus point markers when
// sparse, or a faint raw line under a smoothed one when noisy. It returns the
// plotter to name in a legend.
func addSeries(p *plot.Plot, s series, metric string, ci int) (plot.Thumbnailer, error) {
	if w := s.smoothing(metric); w > 0 {
		raw, err := plotter.NewLine(s.xy)
		if err != nil {
			return nil, err
		}
		raw.Color = paletteColor(ci, 70)
		raw.Width = vg.Points(1)
		smooth, err := plotter.NewLine(ema(s.xy, w))
		if err != nil {
			return nil, err
		}
		smooth.Color = paletteColor(ci, 255)
		smooth.Width = vg.Points(1.8)
		p.Add(raw, smooth)
		return smooth, nil
	}
	line, err := plotter.NewLine(s.xy)
	if err != nil {
		return nil, err
	}
	line.Color = paletteColor(ci, 255)
	line.Width = vg.Points(1.5)
	p.Add(line)
	if !s.sparse() {
		return line, nil
	}
	pts, err := plotter.NewScatter(s.xy)
	if err != nil {
		return nil, err
	}
	pts.GlyphStyle.Color = paletteColor(ci, 255)
	pts.GlyphStyle.Shape = draw.CircleGlyph{}
	pts.GlyphStyle.Radius = vg.Points(2.5)
	p.Add(pts)
	return thumbs{line, pts}, nil
}

// thumbs draws several legend thumbnails on top of each other (line and marker).
type thumbs []plot.Thumbnailer

func (t thumbs) Thumbnail(c *draw.Canvas) {
	for _, th := range t {
		th.Thumbnail(c)
	}
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "step"
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	p.Add(plotter.NewGrid())
	return p
}

// niceTicks labels about six round values (multiples of 1, 2, 2.5 or 5
// times a power of ten) across an axis, more than gonum's default three.
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	mag := math.Pow(10, math.Floor(math.Log10((hi-lo)/6)))
	step, bestD := 0.0, math.Inf(1)
	for _, scale := range []float64{0.1, 1, 10} {
		for _, m := range []float64{1, 2, 2.5, 5} {
			c := m * mag * scale
			n := math.Floor(hi/c+1e-9) - math.Ceil(lo/c-1e-9) + 1
			// Closest to six labels; ties go to the larger step.
			if d := math.Abs(n - 6); d <= bestD {
				step, bestD = c, d
			}
		}
	}
	var ticks []plot.Tick
	for i := math.Ceil(lo / step); i*step <= hi+step*1e-9; i++ {
		v := i * step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 6, 64)})
		if mid := v + step/2; mid < hi {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	if len(ticks) > 0 && lo < ticks[0].Value-step/2 {
		ticks = append(ticks, plot.Tick{Value: ticks[0].Value - step/2})
	}
	return ticks
}

// placeLegend moves p's legend to the corner of the data area holding the
// fewest points, a rough form of matplotlib's loc="best".
func placeLegend(p *plot.Plot, all []plotter.XYs) {
	var xmin, xmax, ymin, ymax = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, xy := range all {
		for _, pt := range xy {
			xmin, xmax = min(xmin, pt.X), max(xmax, pt.X)
			ymin, ymax = min(ymin, pt.Y), max(ymax, pt.Y)
		}
	}
	type corner struct{ top, left bool }
	counts := map[corner]int{}
	for _, xy := range all {
		for _, pt := range xy {
			fx, fy := 0.5, 0.5
			if xmax > xmin {
				fx = (pt.X - xmin) / (xmax - xmin)
			}
			if ymax > ymin {
				fy = (pt.Y - ymin) / (ymax - ymin)
			}
			for _, c := range []corner{{true, false}, {false, false}, {true, true}, {false, true}} {
				inX := (c.left && fx < 0.35) || (!c.left && fx > 0.65)
				inY := (c.top && fy > 0.7) || (!c.top && fy < 0.3)
				if inX && inY {
					counts[c]++
				}
			}
		}
	}
	best := corner{true, false}
	for _, c := range []corner{{false, false}, {true, true}, {false, true}} {
		if counts[c] < counts[best] {
			best = c
		}
	}
	p.Legend.Top, p.Legend.Left = best.top, best.left
	p.Legend.XOffs, p.Legend.YOffs = 0, 0
	if best.left {
		p.Legend.XOffs = vg.Points(8)
	} else {
		p.Legend.XOffs = -vg.Points(8)
	}
	if best.top {
		p.Legend.YOffs = -vg.Points(4)
	} else {
		p.Legend.YOffs = vg.Points(4)
	}
}

func metricPlot(entries []Entry, metric string) (*plot.Plot, error) {
	s := extract(entries, metric)
	p := newPlot(metric)
	p.Y.Label.Text = metric
	if _, err := addSeries(p, s, metric, 0); err != nil {
		return nil, err
	}
	return p, nil
}

// savePNG draws p onto a w x h canvas at PlotDPI and writes it to path.
func savePNG(path string, w, h vg.Length, drawFn func(draw.Canvas)) (err error) {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(PlotDPI), vgimg.UseBackgroundColor(color.White))
	drawFn(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(f)
	return err
}

// PlotFileName returns the file name PlotAll uses for a metric: '/' and any
// other character unsafe in file names become '_', e.g. "rewards/chosen" ->
// "rewards_chosen.png".
func PlotFileName(metric string) string {
	var b strings.Builder
	for _, r := range metric {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String() + ".png"
}

// PlotAll writes dir/plots/<metric>.png (value against step) for every metric
// in entries with at least one finite value, except "epoch", plus
// dir/plots/overview.png with up to six main metrics; it returns the paths
// written, overview last, and nothing for no entries.
func PlotAll(entries []Entry, dir string) ([]string, error) {
	names := map[string]bool{}
	for _, e := range entries {
		for k, v := range e.Values {
			if k != "epoch" && !math.IsNaN(v) && !math.IsInf(v, 0) {
				names[k] = true
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	plotDir := filepath.Join(dir, "plots")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	metrics := slices.Sorted(maps.Keys(names))
	used := map[string]bool{"overview.png": true}
	var paths []string
	for _, m := range metrics {
		file := PlotFileName(m)
		for i := 2; used[file]; i++ {
			file = fmt.Sprintf("%s_%d.png", strings.TrimSuffix(PlotFileName(m), ".png"), i)
		}
		used[file] = true
		p, err := metricPlot(entries, m)
		if err != nil {
			return paths, fmt.Errorf("metrics: plot %s: %w", m, err)
		}
		path := filepath.Join(plotDir, file)
		if err := savePNG(path, PlotWidth, PlotHeight, p.Draw); err != nil {
			return paths, fmt.Errorf("metrics: %w", err)
		}
		paths = append(paths, path)
	}

	path := filepath.Join(plotDir, "overview.png")
	if err := plotOverview(entries, overviewChoice(metrics), path); err != nil {
		return paths, fmt.Errorf("metrics: %w", err)
	}
	return append(paths, path), nil
}

// overviewChoice picks the overview panels: preferred metrics first, then
// the others alphabetically.
func overviewChoice(metrics []string) []string {
	var out []string
	for _, m := range overviewMetrics {
		if slices.Contains(metrics, m) {
			out = append(out, m)
		}
	}
	for _, m := range metrics {
		if !slices.Contains(out, m) && !scheduleLike(m) {
			out = append(out, m)
		}
	}
	return out[:min(len(out), overviewMax)]
}

func plotOverview(entries []Entry, metrics []string, path string) error {
	cols := min(len(metrics), 3)
	if len(metrics) == 4 {
		cols = 2
	}
	rows := (len(metrics) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, m := range metrics {
		p, err := metricPlot(entries, m)
		if err != nil {
			return fmt.Errorf("plot %s: %w", m, err)
		}
		p.Y.Label.Text = ""
		grid[i/cols][i%cols] = p
	}
	w, h := vg.Length(cols)*overviewTile.X, vg.Length(rows)*overviewTile.Y
	return savePNG(path, w, h, func(dc draw.Canvas) {
		tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
			PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
		canvases := plot.Align(grid, tiles, dc)
		for i := range grid {
			for j, p := range grid[i] {
				if p != nil {
					p.Draw(canvases[i][j])
				}
			}
		}
	})
}

// PlotCompare overlays metric from several runs (run name -> entries) in
// one PNG at path, with a legend naming the runs in sorted order; runs
// without the metric are left out, and it fails if none has it.
func PlotCompare(runs map[string][]Entry, metric string, path string) error {
	p := newPlot(metric)
	p.Y.Label.Text = metric
	var all []plotter.XYs
	for i, name := range slices.Sorted(maps.Keys(runs)) {
		s := extract(runs[name], metric)
		if len(s.xy) == 0 {
			continue
		}
		th, err := addSeries(p, s, metric, i)
		if err != nil {
			return fmt.Errorf("metrics: plot %s of %s: %w", metric, name, err)
		}
		p.Legend.Add(name, th)
		all = append(all, s.xy)
	}
	if len(all) == 0 {
		return errors.New("metrics: no run has metric " + fmt.Sprintf("%q", metric))
	}
	placeLegend(p, all)
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := savePNG(path, PlotWidth, PlotHeight, p.Draw); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
