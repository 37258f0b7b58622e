package orpo

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tensor"
)

// t64 makes a float64 tensor from v.
func t64(v []float64) *tensor.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return tensor.FromBytes(b, []int64{int64(len(v))}, tensor.Float64)
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// log1mexp written out: log(1 - e^x), by the branch that is accurate.
func log1mexp(x float64) float64 {
	if x > -math.Ln2 {
		return math.Log(-math.Expm1(x))
	}
	return math.Log1p(-math.Exp(x))
}

func logSigmoid(z float64) float64 { return -math.Log1p(math.Exp(-z)) }

// TestLossMatchesFormula checks every term against the formula computed
// here in float64, for per-token averages on both sides of -ln 2.
func TestLossMatchesFormula(t *testing.T) {
	const beta = 0.25
	sc := []float64{-0.6, -9.0, -2.5, -40} // summed chosen log-probs
	sr := []float64{-1.5, -6.0, -0.9, -44}
	nc := []float64{3, 4, 5, 8}
	nr := []float64{2, 3, 3, 11}
	// the whole chosen rows, prompt included (the NLL term's tokens)
	rc := []float64{-3.1, -12.0, -2.9, -51}
	rn := []float64{7, 9, 6, 20}
	var nllSum, nllN, ratio, odds float64
	for i := range sc {
		lc, lr := sc[i]/nc[i], sr[i]/nr[i]
		o := (lc - lr) - (log1mexp(lc) - log1mexp(lr))
		odds += o / 4
		ratio += logSigmoid(o) / 4
		nllSum -= rc[i]
		nllN += rn[i]
	}
	wantNLL := nllSum / nllN
	wantLoss := wantNLL - beta*ratio
	tensor.Tidy(func() {
		terms := Loss(&Logps{Chosen: t64(sc), Rejected: t64(sr), ChosenLen: t64(nc), RejectedLen: t64(nr), ChosenRow: t64(rc), ChosenRowLen: t64(rn)}, beta)
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"loss", terms.Loss.ItemF64(), wantLoss},
			{"nll_loss", terms.NLL.ItemF64(), wantNLL},
			{"log_odds_chosen", terms.LogOdds.Mean().ItemF64(), odds},
			{"log_odds_ratio", terms.LogSigmoid.Mean().ItemF64(), ratio},
		} {
			if !near(c.got, c.want, 1e-6) {
				t.Errorf("%s = %.9g, want %.9g", c.name, c.got, c.want)
			}
		}
	})
}

// TestLog1mexpAccurate: both ends, where the naive forms fail.
func TestLog1mexpAccurate(t *testing.T) {
	xs := []float64{-1e-10, -1e-3, -0.5, -math.Ln2, -1, -5, -50}
	want := []float64{
		math.Log(1e-10) + math.Log1p(-5e-11), // 1 - e^x = -x(1 + x/2 + ...)
		math.Log(-math.Expm1(-1e-3)),
		math.Log(-math.Expm1(-0.5)),
		math.Log(0.5),
		math.Log1p(-math.Exp(-1)),
		math.Log1p(-math.Exp(-5)),
		-math.Exp(-50), // log(1 - e) ~ -e for tiny e
	}
	tensor.Tidy(func() {
		got := Log1mexp(t64(xs)).Float64s()
		for i := range xs {
			if !near(got[i], want[i], 1e-12*math.Max(1, math.Abs(want[i]))) || (xs[i] == -50 && !near(got[i]/want[i], 1, 1e-9)) {
				t.Errorf("Log1mexp(%g) = %.17g, want %.17g", xs[i], got[i], want[i])
			}
		}
	})
}

// TestLossFiniteWhenCertain: an average log-prob of exactly 0 (a model sure
// of every token) gives a finite loss and gradient.
func TestLossFiniteWhenCertain(t *testing.T) {
	tensor.Tidy(func() {
		c := t64([]float64{0, -1}).Detach()
		c.SetRequiresGrad(true)
		terms := Loss(&Logps{Chosen: c, Rejected: t64([]float64{-2, 0}), ChosenLen: t64([]float64{2, 2}), RejectedLen: t64([]float64{2, 2}), ChosenRow: c.MulScalar(2), ChosenRowLen: t64([]float64{4, 4})}, 0.1)
		terms.Loss.Backward()
		l, g := terms.Loss.ItemF64(), c.Grad().Float64s()
		if math.IsNaN(l) || math.IsInf(l, 0) || math.IsNaN(g[0]) || math.IsNaN(g[1]) || math.IsInf(g[0], 0) || math.IsInf(g[1], 0) {
			t.Errorf("loss %g, gradient %v: want finite", l, g)
		}
	})
}

// TestORPOEndToEnd: ORPO from the SFT model on arithmetic pairs ranks the
// right sum above held-out wrong answers (rewards are beta times the
// average log-prob) and lowers eval loss; the output loads as a causal LM.
func TestORPOEndToEnd(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	data := t.TempDir()
	var train, test []int
	for i := range 200 {
		train = append(train, (i*37)%100)
	}
	for i := range 50 {
		test = append(test, (i*13+5)%100)
	}
	preftest.ArithmeticPairs(t, filepath.Join(data, "train.jsonl"), train, 1)
	preftest.ArithmeticPairs(t, filepath.Join(data, "test.jsonl"), test, 3)
	cfg := DefaultConfig()
	cfg.Model = sftDir
	cfg.Dataset = data
	cfg.OutputDir = t.TempDir()
	cfg.PerDeviceTrainBatchSize = 16
	cfg.PerDeviceEvalBatchSize = 50
	cfg.LearningRate = 1e-3
	cfg.Beta = 1
	cfg.WarmupSteps = 3
	cfg.SaveStrategy = "no"
	cfg.MaxLength = 32
	cfg.MaxSteps = 30
	cfg.EvalStrategy = "steps"
	cfg.EvalSteps = 15
	cfg.EvalOnStart = true
	res, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := preftest.LogHistory(t, cfg.OutputDir)
	losses, accs := preftest.Series(h, "eval_loss"), preftest.Series(h, "eval_rewards/accuracies")
	t.Logf("eval_loss %v, eval_rewards/accuracies %v, eval_log_odds_chosen %v", losses, accs, preftest.Series(h, "eval_log_odds_chosen"))
	if len(losses) != 3 {
		t.Fatalf("eval_loss logged %d times, want 3", len(losses))
	}
	if !(losses[2] < losses[0]) {
		t.Errorf("eval_loss went %v: it did not fall", losses)
	}
	if acc := accs[len(accs)-1]; !(acc > 0.5) {
		t.Errorf("eval rewards/accuracies = %g after training, want > 0.5", acc)
	}
	for _, k := range []string{"nll_loss", "log_odds_ratio", "log_odds_chosen", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
		"logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "eval_nll_loss", "eval_log_odds_ratio"} {
		if _, ok := res.LastMetrics[k]; !ok {
			t.Errorf("metric %s not logged", k)
		}
	}
	m, _, err := checkpoint.Load(cfg.OutputDir, model.LoadOptions{})
	if err != nil {
		t.Fatalf("load ORPO output: %v", err)
	}
	defer m.Free()
	if m.Head != model.LMHead {
		t.Errorf("ORPO output loads with head %v, want a causal LM", m.Head)
	}
}

// TestBadPairsNameFileAndLine: an empty completion is an error naming the
// file and line.
func TestBadPairsNameFileAndLine(t *testing.T) {
	sftDir, _ := preftest.SFTModel(t)
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	body := `{"prompt": "2+2=", "chosen": "4", "rejected": "5"}` + "\n" + `{"prompt": "1+1=", "chosen": "2", "rejected": ""}` + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model, cfg.Dataset, cfg.OutputDir, cfg.MaxSteps = sftDir, path, t.TempDir(), 1
	_, err := Run(context.Background(), cfg, zerolog.Nop(), nil)
	if err == nil || !strings.Contains(err.Error(), "pairs.jsonl:2") || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("error %v, want one naming pairs.jsonl:2 and rejected", err)
	}
}
