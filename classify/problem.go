package classify

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"
)

// problemType is the loss the run trains with, as transformers'
// …ForSequenceClassification decides it: problem_type when set (the flag,
// else the checkpoint's config.json), else regression when the checkpoint
// has num_labels 1, else from the training labels: lists (label names or
// 0/1 vectors) are multi-label, numbers that are not all integers are
// regression (run_glue.py's is_regression: a float label column), and
// class ids or names are single-label.
func (c *Config) problemType(trainSet *datasets.Dataset) (string, error) {
	if c.ProblemType != "" {
		return c.ProblemType, nil
	}
	if c.Model != "" {
		if mc, err := model.ReadConfig(filepath.Join(c.Model, "config.json")); err == nil {
			if mc.ProblemType != "" {
				return mc.ProblemType, nil
			}
			if mc.NumLabels == 1 {
				return model.Regression, nil
			}
		}
	}
	ts, err := trainSet.Targets()
	if err != nil {
		// not a value label: the single-label path reports the record
		return model.SingleLabel, nil
	}
	reg := false
	for _, t := range ts {
		if t.List {
			return model.MultiLabel, nil
		}
		for _, v := range t.Values {
			reg = reg || v != math.Trunc(v)
		}
	}
	if reg {
		return model.Regression, nil
	}
	return model.SingleLabel, nil
}

// labelSplits reads the labels of the splits (evalSet may be nil) as the
// run trains on them: the problem type (problemType), then class ids
// (Label) or float targets (LabelTargets). Run and Preview share it.
func (c *Config) labelSplits(trainSet, evalSet *datasets.Dataset) (problem string, tr, ev *Labeled, err error) {
	if problem, err = c.problemType(trainSet); err != nil {
		return "", nil, nil, err
	}
	if problem == model.SingleLabel {
		tr, ev, err = Label(trainSet, evalSet)
	} else {
		tr, ev, err = LabelTargets(problem, trainSet, evalSet)
	}
	return problem, tr, ev, err
}

// LabelTargets is Label for regression (one float score per example,
// NumLabels 1) and multi-label classification (a multi-hot vector per
// example: from lists of label names, whose sorted union over the
// training split are the classes, or from 0/1 vectors of one length).
// Eval label names must occur in the training data.
func LabelTargets(problem string, trainSet, evalSet *datasets.Dataset) (tr, ev *Labeled, err error) {
	tts, err := trainSet.Targets()
	if err != nil {
		return nil, nil, fmt.Errorf("classify: training data (%s): %w", problem, err)
	}
	if len(tts) == 0 {
		return nil, nil, fmt.Errorf("classify: the training split %q has no examples", trainSet.Name)
	}
	var names []string
	k := 1
	if problem == model.MultiLabel {
		set := map[string]bool{}
		k = -1
		for _, t := range tts {
			for _, n := range t.Names {
				set[n] = true
			}
			if t.Values != nil {
				if k >= 0 && len(t.Values) != k {
					return nil, nil, fmt.Errorf("classify: %s: label has %d values but earlier labels have %d", t.Src, len(t.Values), k)
				}
				k = len(t.Values)
			}
		}
		if len(set) > 0 && k >= 0 {
			return nil, nil, fmt.Errorf("classify: multi_label_classification: the training labels mix lists of names and 0/1 vectors")
		}
		for n := range set {
			names = append(names, n)
		}
		sort.Strings(names)
		if names != nil {
			k = len(names)
		}
		if k < 1 {
			return nil, nil, fmt.Errorf("classify: multi_label_classification: the training labels name no class")
		}
	}
	conv := func(ts []datasets.Target) (*Labeled, error) {
		l := &Labeled{Names: names, NumLabels: k}
		for _, t := range ts {
			v := make([]float32, k)
			switch {
			case problem == model.Regression:
				if t.List || len(t.Values) != 1 {
					return nil, fmt.Errorf("classify: %s: regression wants one number as the label", t.Src)
				}
				v[0] = float32(t.Values[0])
			case names != nil:
				if t.Values != nil || !t.List {
					return nil, fmt.Errorf("classify: %s: multi_label_classification: want a list of label names like the training data", t.Src)
				}
				for _, n := range t.Names {
					j := slices.Index(names, n)
					if j < 0 {
						return nil, fmt.Errorf("classify: %s: label %q does not occur in the training data (classes %q)", t.Src, n, names)
					}
					v[j] = 1
				}
			default:
				if !t.List || len(t.Values) != k {
					return nil, fmt.Errorf("classify: %s: multi_label_classification: want a list of %d 0/1 values", t.Src, k)
				}
				for j, x := range t.Values {
					if x != 0 && x != 1 {
						return nil, fmt.Errorf("classify: %s: multi-hot value %v is not 0 or 1", t.Src, x)
					}
					v[j] = float32(x)
				}
			}
			l.Examples = append(l.Examples, t.Example)
			l.Targets = append(l.Targets, v)
		}
		return l, nil
	}
	if tr, err = conv(tts); err != nil {
		return nil, nil, err
	}
	if evalSet == nil {
		return tr, nil, nil
	}
	ets, err := evalSet.Targets()
	if err != nil {
		return nil, nil, fmt.Errorf("classify: eval data (%s): %w", problem, err)
	}
	if ev, err = conv(ets); err != nil {
		return nil, nil, err
	}
	return tr, ev, nil
}

// RegressionMetrics are GLUE STS-B's pearson and spearmanr with the mean
// squared error, its root and the mean absolute error of pred against
// label, named with prefix. Empty input gives nothing; a correlation with
// a constant side is 0.
func RegressionMetrics(pred, label []float64, prefix string) map[string]float64 {
	n := float64(len(pred))
	if n == 0 {
		return map[string]float64{}
	}
	var se, ae float64
	for i := range pred {
		d := pred[i] - label[i]
		se += d * d
		ae += math.Abs(d)
	}
	return map[string]float64{
		prefix + "mse":       se / n,
		prefix + "rmse":      math.Sqrt(se / n),
		prefix + "mae":       ae / n,
		prefix + "pearson":   Pearson(pred, label),
		prefix + "spearmanr": Pearson(ranks(pred), ranks(label)),
	}
}

// Pearson is the Pearson correlation of x and y (scipy.stats.pearsonr's
// statistic), 0 when either is constant.
func Pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// ranks are the 1-based ranks of x, ties given their mean rank
// (scipy.stats.rankdata's "average"), so Pearson of the ranks is
// Spearman's rho.
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// MultiLabelMetrics are the multi-label scores of 0/1 predictions (sigmoid
// > 0.5) against 0/1 labels, rows of k: f1_micro (2TP / (2TP+FP+FN) over
// every (example, label) cell), f1_macro (the mean over the k labels of
// each label's F1, 0 for a label neither predicted nor present, as
// sklearn's zero_division) and accuracy (exact match: every label of the
// example right, sklearn's subset accuracy), named with prefix.
func MultiLabelMetrics(pred, label []bool, k int, prefix string) map[string]float64 {
	if len(pred) == 0 || k == 0 {
		return map[string]float64{}
	}
	n := len(pred) / k
	tp, fp, fn := make([]int, k), make([]int, k), make([]int, k)
	exact := 0
	for i := 0; i < n; i++ {
		ok := true
		for j := 0; j < k; j++ {
			p, l := pred[i*k+j], label[i*k+j]
			switch {
			case p && l:
				tp[j]++
			case p:
				fp[j]++
			case l:
				fn[j]++
			}
			ok = ok && p == l
		}
		if ok {
			exact++
		}
	}
	f1 := func(tp, fp, fn int) float64 {
		if d := 2*tp + fp + fn; d > 0 {
			return float64(2*tp) / float64(d)
		}
		return 0
	}
	var TP, FP, FN int
	var macro float64
	for j := 0; j < k; j++ {
		TP, FP, FN = TP+tp[j], FP+fp[j], FN+fn[j]
		macro += f1(tp[j], fp[j], fn[j])
	}
	return map[string]float64{
		prefix + "f1_micro": f1(TP, FP, FN),
		prefix + "f1_macro": macro / float64(k),
		prefix + "accuracy": float64(exact) / float64(n),
	}
}
