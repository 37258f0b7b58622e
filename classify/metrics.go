package classify

import "math"

// Scores are the classification metrics rl reports, computed over a whole
// evaluation set (never averaged over batches: F1 and MCC of a union are not
// the mean of the parts' values).
type Scores struct {
	// Accuracy is the fraction of predictions equal to the label.
	Accuracy float64 `json:"accuracy"`
	// F1 is the binary F1 of class 1 when there are two classes (GLUE's f1
	// for MRPC), else the macro F1.
	F1 float64 `json:"f1"`
	// F1Macro is the unweighted mean of the per-class F1 over the classes
	// present in the labels or the predictions (sklearn's average="macro").
	F1Macro float64 `json:"f1_macro"`
	// MCC is the Matthews correlation coefficient (GLUE's metric for CoLA),
	// sklearn's multiclass form; 0 when it is undefined.
	MCC float64 `json:"matthews_correlation"`
}

// Metrics maps the scores to their Hugging Face metric names with a prefix
// ("eval_" gives eval_accuracy, eval_f1, eval_f1_macro, eval_matthews_correlation).
func (s Scores) Metrics(prefix string) map[string]float64 {
	return map[string]float64{
		prefix + "accuracy":             s.Accuracy,
		prefix + "f1":                   s.F1,
		prefix + "f1_macro":             s.F1Macro,
		prefix + "matthews_correlation": s.MCC,
	}
}

// Evaluate computes every score of predictions against labels for a task
// with numLabels classes. Class ids are non-negative; pred and label must
// have the same length (Evaluate panics otherwise, a programming error).
// Empty input gives zero scores.
func Evaluate(pred, label []int, numLabels int) Scores {
	s := Scores{Accuracy: Accuracy(pred, label), F1Macro: F1Macro(pred, label), MCC: MatthewsCorrelation(pred, label)}
	if numLabels == 2 {
		s.F1 = F1(pred, label, 1)
	} else {
		s.F1 = s.F1Macro
	}
	return s
}

func checkLens(pred, label []int) {
	if len(pred) != len(label) {
		panic("classify: predictions and labels differ in length")
	}
}

// Accuracy is the fraction of pred equal to label (0 for empty input).
func Accuracy(pred, label []int) float64 {
	checkLens(pred, label)
	if len(pred) == 0 {
		return 0
	}
	n := 0
	for i := range pred {
		if pred[i] == label[i] {
			n++
		}
	}
	return float64(n) / float64(len(pred))
}

// F1 is the F1 score of class positive: 2TP / (2TP + FP + FN), the harmonic
// mean of precision and recall. When the class is neither predicted nor
// labelled (TP = FP = FN = 0) it is 0, as sklearn's zero_division default.
func F1(pred, label []int, positive int) float64 {
	checkLens(pred, label)
	var tp, fp, fn int
	for i := range pred {
		p, l := pred[i] == positive, label[i] == positive
		switch {
		case p && l:
			tp++
		case p:
			fp++
		case l:
			fn++
		}
	}
	if d := 2*tp + fp + fn; d > 0 {
		return float64(2*tp) / float64(d)
	}
	return 0
}

// F1Macro is the mean of F1 over the classes that occur in label or pred
// (sklearn's f1_score(average="macro") without a labels argument).
func F1Macro(pred, label []int) float64 {
	checkLens(pred, label)
	seen := map[int]bool{}
	for i := range pred {
		seen[pred[i]] = true
		seen[label[i]] = true
	}
	if len(seen) == 0 {
		return 0
	}
	var sum float64
	for c := range seen {
		sum += F1(pred, label, c)
	}
	return sum / float64(len(seen))
}

// MatthewsCorrelation is the Matthews correlation coefficient in its
// multiclass form (Gorodkin 2004; sklearn's matthews_corrcoef), which for
// two classes is (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
// With C the confusion matrix, t_k the true and p_k the predicted counts of
// class k, c the correct count and s the total:
//
//	MCC = (c*s - sum_k t_k*p_k) / sqrt((s^2 - sum_k p_k^2) * (s^2 - sum_k t_k^2))
//
// When a factor under the root is 0 (one class predicted only, or one class
// labelled only) MCC is 0, as sklearn returns.
func MatthewsCorrelation(pred, label []int) float64 {
	checkLens(pred, label)
	t, p := map[int]float64{}, map[int]float64{}
	var c, s float64
	for i := range pred {
		t[label[i]]++
		p[pred[i]]++
		if pred[i] == label[i] {
			c++
		}
		s++
	}
	var tp, pp, tt float64
	for k, v := range t {
		tp += v * p[k]
		tt += v * v
	}
	for _, v := range p {
		pp += v * v
	}
	cov := c*s - tp
	den := (s*s - pp) * (s*s - tt)
	if den == 0 {
		return 0
	}
	return cov / math.Sqrt(den)
}

// Majority returns the most frequent class of labels (the lowest id on a
// tie) and -1 for no labels: the majority-class baseline predicts it for
// every example.
func Majority(labels []int) int {
	count := map[int]int{}
	for _, l := range labels {
		count[l]++
	}
	best := -1
	for c, n := range count {
		if best < 0 || n > count[best] || n == count[best] && c < best {
			best = c
		}
	}
	return best
}

// Constant returns n copies of class c (a constant predictor's output).
func Constant(c, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = c
	}
	return out
}
