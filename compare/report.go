package compare

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/metrics"
)

// Options configures Report; the zero value writes into "comparison".
type Options struct {
	// OutputDir receives comparison.md and the PNGs. This defaults to "comparison".
	OutputDir string
}

// MarkdownFile is the name of the table Report writes.
const MarkdownFile = "comparison.md"

// GoldPlotFile is the name of the gold-metric bar chart.
const GoldPlotFile = "gold.png"

// Result lists what Report wrote.
type Result struct {
	Runs     []*Run
	Groups   []*Group   // the runs by configuration, over seeds
	Pairs    []GoldPair // the paired tests of the gold metric
	Markdown string     // the content of comparison.md
	Files    []string   // every file written, comparison.md and comparison.html first
	Warnings []string   // what was missing from a run directory, one line each
}

// Report loads each run directory and writes into opts.OutputDir:
// comparison.md (one table row per run, in the order given; with runs of
// a configuration under several seeds, their mean, std and 95% interval
// per metric and paired tests of the gold metric), comparison.html (the
// same, self-contained, plots inlined), one PNG per
// metric logged by two or more runs with the runs overlaid against step
// (named by metrics.PlotFileName), and gold.png, a bar chart of the gold
// metric of the runs that have a gold.json.
func Report(dirs []string, opts Options) (*Result, error) {
	if len(dirs) == 0 {
		return nil, errors.New("compare: no run directories")
	}
	out := opts.OutputDir
	if out == "" {
		out = "comparison"
	}
	res := &Result{}
	for _, d := range dirs {
		r, err := Load(d)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, r)
		res.Warnings = append(res.Warnings, missing(r)...)
	}
	if !slices.ContainsFunc(res.Runs, func(r *Run) bool { return !r.Empty() }) {
		return nil, fmt.Errorf("%w: none of %s has an rl_config.yaml, trainer_state.json, metrics.jsonl or gold.json; give the --output-dir of rl runs", ErrNotRun, strings.Join(dirs, ", "))
	}
	uniqueNames(res.Runs)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}

	groups := Groups(res.Runs)
	plots, err := writePlots(res.Runs, groups, out)
	if err != nil {
		return nil, err
	}
	d := build(res.Runs, groups, plots)
	res.Groups = groups
	_, res.Pairs = pairedTable(groups)
	res.Markdown = d.markdown()
	md := filepath.Join(out, MarkdownFile)
	if err := fsutil.WriteFile(md, []byte(res.Markdown), 0o644); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	page, err := d.html()
	if err != nil {
		return nil, err
	}
	hp := filepath.Join(out, HTMLFile)
	if err := fsutil.WriteFile(hp, []byte(page), 0o644); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	res.Files = append([]string{md, hp}, plots...)
	return res, nil
}

// missing names the files a run directory lacks.
func missing(r *Run) []string {
	var w []string
	if r.Config == nil {
		w = append(w, fmt.Sprintf("%s: no %s (method and settings unknown)", r.Dir, ConfigFile))
	}
	if r.Entries == nil {
		w = append(w, fmt.Sprintf("%s: no %s", r.Dir, metrics.FileName))
	}
	if r.Gold == nil {
		w = append(w, fmt.Sprintf("%s: no %s (gold metric unknown)", r.Dir, GoldFile))
	}
	return w
}

// uniqueNames gives runs with the same base name their parent's name too
// ("a/dpo", "b/dpo"), then a counter if that is not enough.
func uniqueNames(runs []*Run) {
	count := map[string]int{}
	for _, r := range runs {
		count[r.Name]++
	}
	for _, r := range runs {
		if count[r.Name] > 1 {
			parent := filepath.Base(filepath.Dir(filepath.Clean(r.Dir)))
			r.Name = parent + "/" + r.Name
		}
	}
	seen := map[string]int{}
	for _, r := range runs {
		seen[r.Name]++
		if n := seen[r.Name]; n > 1 {
			r.Name = fmt.Sprintf("%s#%d", r.Name, n)
		}
	}
}

// column is one metric column: the first key a run has is shown, as
// "final (best)".
type column struct {
	header   string
	keys     []string
	maximize bool
}

var columns = []column{
	{"train loss", []string{"loss", "train_loss"}, false},
	{"eval_loss", []string{"eval_loss"}, false},
	{"accuracy", []string{"eval_rewards/accuracies", "rewards/accuracies", "eval_accuracy", "accuracy"}, true},
	{"objective/scores", []string{"objective/scores"}, true},
}

const readingGuide = "Reading guide: cells read final (best) over the run, best being the lowest loss or the highest accuracy or score; " +
	"losses are each method's own objective and do not compare across methods, so compare gold, the task's exact metric of the final model on held-out prompts (gold.json); " +
	"KL to ref is measured on the policy's samples (gold.json's kl_to_ref, or PPO's objective/kl), while ≈ marks DPO's mean log(π/π_ref) on the preference pairs, from rewards/chosen and rewards/rejected over beta; " +
	"well-formed is the fraction of gold samples the task parses (reward hacking lowers it); " +
	"accuracy is rewards/accuracies (DPO, ORPO, KTO, CPO) or accuracy (reward model), eval_ first when logged; ~ marks a wall time taken from file times; - means not recorded."

// Markdown renders the comparison table, its reading guide, the statistics
// over seeds and the paired tests (when there are any) and links to plots.
func Markdown(runs []*Run, plots []string) string {
	return build(runs, Groups(runs), plots).markdown()
}

// build assembles the report: the per-run table, then, when a
// configuration ran under two or more seeds, its statistics, and the paired
// tests of the gold metric between configurations.
func build(runs []*Run, groups []*Group, plots []string) *document {
	header := []string{"run", "method", "settings", "steps"}
	for _, c := range columns {
		header = append(header, c.header)
	}
	header = append(header, "gold (mean ± std, n)", "well-formed", "KL to ref", "wall time", "tokens/s")
	runsT := &table{header: header}
	for _, r := range runs {
		runsT.rows = append(runsT.rows, row(r))
	}
	d := &document{plots: plots}
	d.sections = append(d.sections, section{title: "Runs", id: "runs", table: runsT, text: []string{readingGuide}})
	seeded := false
	for _, g := range groups {
		seeded = seeded || len(g.Runs) > 1
	}
	if seeded {
		d.sections = append(d.sections, section{title: "Over seeds", id: "seeds", table: statsTable(groups), text: []string{
			"Each configuration's runs under different seeds (run directories seed-N/NAME, or NAME-seedN) summarised per metric: " +
				"the mean, the sample standard deviation (divisor n−1) and the 95% interval of the mean, mean ± t(0.975, n−1)·std/√n (Student's t with n−1 degrees of freedom); " +
				"gold is each run's mean gold score on the held-out prompts; (final) is the last logged value. " +
				"In the plots each line is a configuration's mean over its seeds at each step, and gold.png shows each configuration's mean with its 95% interval."}})
	}
	if pt, _ := pairedTable(groups); len(pt.rows) > 0 {
		d.sections = append(d.sections, section{title: "Paired tests on gold", id: "paired", table: pt, text: []string{
			"Paired t-test of each pair of configurations on the gold metric, pairing like with like: per-prompt pairs the gold score of the same held-out prompt " +
				"(averaged over its samples) under the same seed, pooled over the seeds both ran (pairs = prompts × seeds, treated as independent); " +
				"per-seed pairs each seed's gold mean (used when a run lacks gold.json's prompt_scores). " +
				"t = mean(A − B) / (std(A − B)/√pairs) with df = pairs − 1; p is two-sided; the verdict reads p < 0.05. " +
				"Seeds vary data, initialisation and sampling together, so per-prompt p-values understate the seed-to-seed spread the Over seeds intervals show."}})
	}
	return d
}

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" ")
		b.WriteString(strings.ReplaceAll(c, "|", `\|`))
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

const none = "-"

func row(r *Run) []string {
	method := r.Method
	if method == "" {
		method = none
	}
	steps := none
	if n, ok := r.Steps(); ok {
		steps = strconv.Itoa(n)
	}
	cells := []string{r.Name, method, settings(r), steps}
	for _, c := range columns {
		cells = append(cells, metricCell(r, c))
	}
	gold := none
	if g := r.Gold; g != nil {
		gold = fmt.Sprintf("%s ± %s (n=%d)", num(g.Mean), num(g.Std), g.N)
	}
	wf := none
	if r.Gold != nil && r.Gold.WellFormed != nil {
		wf = num(*r.Gold.WellFormed)
	}
	wall := none
	if r.Runtime > 0 {
		wall = metrics.FormatDuration(r.Runtime)
		if r.RuntimeApprox {
			wall = "~" + wall
		}
	}
	tps := none
	if v, ok := r.TokensPerSecond(); ok {
		tps = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return append(cells, gold, wf, klCell(r), wall, tps)
}

func metricCell(r *Run, c column) string {
	for _, k := range c.keys {
		last, ok := lastValue(r.Entries, k)
		if !ok {
			continue
		}
		best, _ := bestValue(r.Entries, k, c.maximize)
		return fmt.Sprintf("%s (%s)", num(last), num(best))
	}
	return none
}

// klCell reports the KL of the final policy to its reference, from the best
// source at hand: gold.json's kl_to_ref (on samples), PPO's last
// objective/kl (on rollouts), or, marked ≈, DPO's implicit log-ratio on the
// preference data, (rewards/chosen + rewards/rejected) / (2 beta).
func klCell(r *Run) string {
	if r.Gold != nil && r.Gold.KLToRef != nil {
		return num(*r.Gold.KLToRef)
	}
	if v, ok := lastValue(r.Entries, "objective/kl"); ok {
		return num(v)
	}
	if r.Method == "dpo" {
		beta, okB := r.number("beta")
		c, okC := lastValue(r.Entries, "rewards/chosen")
		j, okJ := lastValue(r.Entries, "rewards/rejected")
		if okB && okC && okJ && beta > 0 {
			return "≈" + num((c+j)/(2*beta))
		}
	}
	return none
}

// settingKeys are the config keys shown per method after learning_rate.
var settingKeys = map[string][]string{
	"dpo":    {"beta", "loss_type"},
	"cpo":    {"beta", "loss_type", "cpo_alpha", "simpo_gamma"},
	"orpo":   {"beta"},
	"kto":    {"beta", "loss_type"},
	"ppo":    {"kl_coef", "num_ppo_epochs", "total_episodes", "reward_model_path", "reward_funcs"},
	"reward": {"center_rewards_coefficient"},
	"grpo":   {"beta", "loss_type", "num_generations", "reward_funcs"},
	"rloo":   {"beta", "num_generations", "reward_funcs"},
	"sft":    {"init", "packing", "max_length"},
}

// settings renders the key settings: learning_rate, the method's own keys,
// then max_steps when set or else num_train_epochs.
func settings(r *Run) string {
	if r.Config == nil {
		return none
	}
	var parts []string
	add := func(key string) {
		v, ok := r.Config[key]
		if !ok || v == nil {
			return
		}
		switch x := v.(type) {
		case bool:
			if x {
				parts = append(parts, key)
			}
		case string:
			if x != "" {
				if strings.Contains(x, string(filepath.Separator)) {
					x = filepath.Base(x)
				}
				parts = append(parts, key+"="+x)
			}
		case int:
			parts = append(parts, fmt.Sprintf("%s=%d", key, x))
		case float64:
			parts = append(parts, key+"="+strconv.FormatFloat(x, 'g', -1, 64))
		case []any: // e.g. DPO's loss_type [sigmoid, sft]
			if len(x) > 0 {
				var items []string
				for _, it := range x {
					items = append(items, fmt.Sprint(it))
				}
				parts = append(parts, key+"="+strings.Join(items, ","))
			}
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", key, x))
		}
	}
	add("learning_rate")
	keys := settingKeys[r.Method]
	if r.Method == "" {
		keys = []string{"beta", "loss_type", "kl_coef"}
	}
	for _, k := range keys {
		add(k)
	}
	if s, ok := r.number("max_steps"); ok && s > 0 {
		add("max_steps")
	} else {
		add("num_train_epochs")
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, ", ")
}

// num renders a value in four significant digits.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	if a >= 1e-3 && a < 1e5 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	return strconv.FormatFloat(v, 'e', 2, 64)
}

// sharedMetrics lists the metrics (except epoch) with a finite value in two
// or more runs, sorted.
func sharedMetrics(runs []*Run) []string {
	count := map[string]int{}
	for _, r := range runs {
		has := map[string]bool{}
		for _, e := range r.Entries {
			for k, v := range e.Values {
				if k != "epoch" && !math.IsNaN(v) && !math.IsInf(v, 0) {
					has[k] = true
				}
			}
		}
		for k := range has {
			count[k]++
		}
	}
	var out []string
	for k, n := range count {
		if n >= 2 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
