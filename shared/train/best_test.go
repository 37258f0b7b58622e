package train

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricForBestModelUnknown: a metric the evaluation does not produce
// is an error at the first evaluation naming the available ones, not a
// run that silently tracks nothing (issue 11, item 15).
func TestMetricForBestModelUnknown(t *testing.T) {
	m := tinyLM(t)
	defer m.Free()
	tr := newTrainer(t, t.TempDir(), m)
	tr.Args.MetricForBestModel = "nosuch"
	_, err := tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "eval_nosuch") || !strings.Contains(err.Error(), "eval_loss") || !strings.Contains(err.Error(), "eval_perplexity") {
		t.Errorf("Run = %v, want an error naming eval_nosuch and the available metrics", err)
	}
}

// TestSaveTotalLimitKeepsBestAndLast: with load_best_model_at_end and
// save_total_limit 1, the best and the last checkpoint are both kept, as
// transformers does (issue 11, item 15).
func TestSaveTotalLimitKeepsBestAndLast(t *testing.T) {
	m := tinyLM(t)
	defer m.Free()
	dir := t.TempDir()
	tr := newTrainer(t, dir, m)
	tr.Args.SaveSteps, tr.Args.EvalSteps, tr.Args.SaveTotalLimit = 2, 2, 1
	tr.Args.LoadBestModelAtEnd = true
	tr.Args.MetricForBestModel = "perplexity"
	yes := true
	tr.Args.GreaterIsBetter = &yes // the worst perplexity: an early checkpoint is "best"
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := filepath.Join(dir, "checkpoint-8")
	b, err := os.ReadFile(filepath.Join(last, "trainer_state.json"))
	if err != nil {
		t.Fatalf("the last checkpoint was deleted: %v", err)
	}
	var st struct {
		Best *string `json:"best_model_checkpoint"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Best == nil {
		t.Fatalf("trainer_state.json: %v %s", err, b)
	}
	if _, err := os.Stat(*st.Best); err != nil {
		t.Errorf("the best checkpoint %s was deleted: %v", *st.Best, err)
	}
	cks, _ := Checkpoints(dir)
	if want := 2; filepath.Clean(*st.Best) == filepath.Clean(last) {
		want = 1
		if len(cks) != want {
			t.Errorf("checkpoints %v, want %d", cks, want)
		}
	} else if len(cks) != want {
		t.Errorf("checkpoints %v, want best and last", cks)
	}
}
