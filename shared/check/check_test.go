package check

import (
	"math"
	"strings"
	"testing"
)

type inner struct {
	Rate  float64 `yaml:"learning_rate" range:"[0,inf)"`
	Steps int     `yaml:"warmup_steps" range:"[0,inf)"`
}

type cfg struct {
	inner   `yaml:",inline"`
	Gamma   float64   `yaml:"gamma" range:"[0,1]"`
	Beta    float64   `yaml:"beta"`
	Eps     *float64  `yaml:"eps" range:"(0,inf)"`
	Weights []float64 `yaml:"loss_weights"`
	Batch   int       `yaml:"batch_size" range:"[1,inf)"`
}

func TestFields(t *testing.T) {
	neg := -1.0
	c := cfg{inner: inner{Rate: math.NaN(), Steps: -3}, Gamma: -3, Beta: math.Inf(1), Eps: &neg, Weights: []float64{1, math.NaN()}, Batch: 0}
	err := Fields(&c)
	if err == nil {
		t.Fatal("Fields accepted NaN, Inf and out-of-range values")
	}
	for _, want := range []string{
		"learning_rate (--learning-rate) = NaN: want a finite number >= 0",
		"warmup_steps (--warmup-steps) = -3: want an integer >= 0",
		"gamma (--gamma) = -3: want a value in [0, 1]",
		"beta (--beta) = +Inf: want a finite number",
		"eps (--eps) = -1: want a value > 0",
		"loss_weights (--loss-weights) (item 2) = NaN",
		"batch_size (--batch-size) = 0: want an integer >= 1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := OwnFields(&c); err == nil || strings.Contains(err.Error(), "learning_rate") {
		t.Errorf("OwnFields checked the inline struct or nothing: %v", err)
	}
	ok := cfg{Gamma: 1, Batch: 1}
	if err := Fields(ok); err != nil {
		t.Errorf("Fields(valid) = %v", err)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		s       string
		in, out []float64
	}{
		{"[0,1)", []float64{0, 0.5}, []float64{1, -1e-9, math.NaN()}},
		{"(0,inf)", []float64{1e-300, 1e300}, []float64{0, math.Inf(1)}},
		{"[-1,inf)", []float64{-1, 7}, []float64{-2}},
		{"[0,0.5)", []float64{0.49}, []float64{0.5}},
	} {
		r, err := ParseRange(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tc.in {
			if !r.Contains(v) {
				t.Errorf("%s does not contain %g", tc.s, v)
			}
		}
		for _, v := range tc.out {
			if r.Contains(v) {
				t.Errorf("%s contains %g", tc.s, v)
			}
		}
	}
	for _, s := range []string{"", "0,1", "[0;1]", "[a,1]"} {
		if _, err := ParseRange(s); err == nil {
			t.Errorf("ParseRange(%q) accepted", s)
		}
	}
}
