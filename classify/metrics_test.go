package classify

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestMetrics checks every metric against values worked out by hand; the
// arithmetic is in the comments. F1 is the binary F1 of class 1 when
// numLabels is 2, else the macro F1.
func TestMetrics(t *testing.T) {
	cases := []struct {
		name        string
		pred, label []int
		numLabels   int
		want        Scores
	}{{
		// TP=3 (0,1,2) FN=1 (3) FP=2 (4,9) TN=4 (5..8).
		// accuracy = (3+4)/10; F1(1) = 2*3/(2*3+2+1) = 6/9;
		// F1(0): TP=4 FP=1 FN=2 -> 8/11; macro = (6/9 + 8/11)/2;
		// MCC = (3*4 - 2*1)/sqrt((3+2)(3+1)(4+2)(4+1)) = 10/sqrt(600).
		name:      "binary",
		label:     []int{1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
		pred:      []int{1, 1, 1, 0, 1, 0, 0, 0, 0, 1},
		numLabels: 2,
		want:      Scores{Accuracy: 0.7, F1: 6.0 / 9, F1Macro: (6.0/9 + 8.0/11) / 2, MCC: 10 / math.Sqrt(600)},
	}, {
		// Only class 0 predicted: accuracy 3/5; F1(1): TP=0 FP=0 FN=2 -> 0/2 = 0;
		// F1(0): TP=3 FP=2 FN=0 -> 6/8; macro = (0 + 0.75)/2; MCC: the
		// predicted counts are (5, 0), s^2 - sum p_k^2 = 25 - 25 = 0 -> 0.
		name:      "one class predicted only",
		label:     []int{1, 0, 1, 0, 0},
		pred:      []int{0, 0, 0, 0, 0},
		numLabels: 2,
		want:      Scores{Accuracy: 0.6, F1: 0, F1Macro: 0.375, MCC: 0},
	}, {
		// Only class 1 predicted: accuracy 2/5; F1(1): TP=2 FP=3 FN=0 -> 4/7;
		// F1(0): TP=0 FP=0 FN=3 -> 0; macro 2/7; MCC 0.
		name:      "positive predicted only",
		label:     []int{1, 0, 1, 0, 0},
		pred:      []int{1, 1, 1, 1, 1},
		numLabels: 2,
		want:      Scores{Accuracy: 0.4, F1: 4.0 / 7, F1Macro: 2.0 / 7, MCC: 0},
	}, {
		name:      "all correct binary",
		label:     []int{0, 1, 1, 0},
		pred:      []int{0, 1, 1, 0},
		numLabels: 2,
		want:      Scores{Accuracy: 1, F1: 1, F1Macro: 1, MCC: 1},
	}, {
		// TP=0 FP=2 FN=2 TN=0: F1(1) = 0/4; MCC = (0*0 - 2*2)/sqrt(2*2*2*2) = -1.
		name:      "all wrong binary",
		label:     []int{0, 1, 0, 1},
		pred:      []int{1, 0, 1, 0},
		numLabels: 2,
		want:      Scores{Accuracy: 0, F1: 0, F1Macro: 0, MCC: -1},
	}, {
		name:      "all correct three classes",
		label:     []int{0, 1, 2, 1},
		pred:      []int{0, 1, 2, 1},
		numLabels: 3,
		want:      Scores{Accuracy: 1, F1: 1, F1Macro: 1, MCC: 1},
	}, {
		// Class 2 is predicted once but never a label. accuracy 3/4.
		// F1(0): TP=1 FP=0 FN=1 -> 2/3; F1(1): TP=2 -> 1; F1(2): TP=0 FP=1 FN=0 -> 0;
		// macro over {0,1,2} = (2/3 + 1 + 0)/3 = 5/9 (= F1 for 3 classes).
		// MCC: c=3 s=4, t=(2,2,0) p=(1,2,1); sum t_k p_k = 2+4 = 6;
		// cov = 3*4 - 6 = 6; s^2 - sum p^2 = 16-6 = 10; s^2 - sum t^2 = 16-8 = 8;
		// MCC = 6/sqrt(80).
		name:      "class absent from labels",
		label:     []int{0, 0, 1, 1},
		pred:      []int{0, 2, 1, 1},
		numLabels: 3,
		want:      Scores{Accuracy: 0.75, F1: 5.0 / 9, F1Macro: 5.0 / 9, MCC: 6 / math.Sqrt(80)},
	}, {
		// One class only, all correct: F1(1) = 0 (never predicted nor
		// labelled, sklearn's zero_division); macro over {0} = 1; MCC 0
		// (s^2 - sum t_k^2 = 9 - 9 = 0), not NaN.
		name:      "single class all correct",
		label:     []int{0, 0, 0},
		pred:      []int{0, 0, 0},
		numLabels: 2,
		want:      Scores{Accuracy: 1, F1: 0, F1Macro: 1, MCC: 0},
	}, {
		name:      "empty",
		numLabels: 2,
		want:      Scores{},
	}}
	for _, c := range cases {
		got := Evaluate(c.pred, c.label, c.numLabels)
		for _, m := range []struct {
			name      string
			got, want float64
		}{
			{"accuracy", got.Accuracy, c.want.Accuracy},
			{"f1", got.F1, c.want.F1},
			{"f1_macro", got.F1Macro, c.want.F1Macro},
			{"matthews_correlation", got.MCC, c.want.MCC},
		} {
			if math.IsNaN(m.got) || !near(m.got, m.want, 1e-12) {
				t.Errorf("%s: %s = %.12g, want %.12g", c.name, m.name, m.got, m.want)
			}
		}
	}
}

// TestMCCTwoClassFormula: the multiclass MCC equals the binary formula
// (TP*TN - FP*FN)/sqrt(...) on random-ish confusion counts.
func TestMCCTwoClassFormula(t *testing.T) {
	for _, n := range [][4]int{{5, 3, 2, 7}, {10, 0, 1, 4}, {1, 9, 8, 2}} {
		tp, fp, fn, tn := n[0], n[1], n[2], n[3]
		var pred, label []int
		add := func(k, p, l int) {
			for range k {
				pred, label = append(pred, p), append(label, l)
			}
		}
		add(tp, 1, 1)
		add(fp, 1, 0)
		add(fn, 0, 1)
		add(tn, 0, 0)
		want := float64(tp*tn-fp*fn) / math.Sqrt(float64((tp+fp)*(tp+fn)*(tn+fp)*(tn+fn)))
		if got := MatthewsCorrelation(pred, label); !near(got, want, 1e-12) {
			t.Errorf("MCC(tp=%d fp=%d fn=%d tn=%d) = %g, want %g", tp, fp, fn, tn, got, want)
		}
	}
}

func TestMajority(t *testing.T) {
	for _, c := range []struct {
		labels []int
		want   int
	}{
		{[]int{1, 0, 1, 0}, 0}, // a tie goes to the lower id
		{[]int{2, 2, 1}, 2},
		{[]int{1, 1, 0, 0, 1}, 1},
		{nil, -1},
	} {
		if got := Majority(c.labels); got != c.want {
			t.Errorf("Majority(%v) = %d, want %d", c.labels, got, c.want)
		}
	}
}

func TestLabelFromCompletion(t *testing.T) {
	names := []string{"negative", "positive"}
	for _, c := range []struct {
		completion string
		want       int
	}{
		{" positive", 1},
		{" negative", 0},
		{"Positive\n", 1},
		{" pos", 1},        // a one-token completion may hold part of the name
		{" positive.", 1},  // the name then more
		{" neutral", -1},   // no class
		{"", -1},           // nothing generated
		{" ", -1},          // only space
		{"positively", 1},  // starts with a name
		{" p", 1},          // prefix of one name only
		{" ne", 0},         // prefix of one name only
		{" po sitive", -1}, // neither a prefix of a name nor starting with one
		{"negative positive", 0},
	} {
		if got := LabelFromCompletion(c.completion, names); got != c.want {
			t.Errorf("LabelFromCompletion(%q) = %d, want %d", c.completion, got, c.want)
		}
	}
	if got := LabelFromCompletion(" a", []string{"ab", "ac"}); got != -1 {
		t.Errorf("ambiguous prefix: got %d, want -1", got)
	}
}
