package sft

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestSkipBadRecordsLogged: rows dropped by skip_bad_records are logged
// with their count and first reasons, not only visible as a small
// train_examples (issue 11, item 13).
func TestSkipBadRecordsLogged(t *testing.T) {
	_, tokDir := testTokenizer(t)
	data := t.TempDir()
	csv := "prompt,completion\n1+1=,2\n2+2=,\n3+3=,6,extra\n\"4+4=\",\"\x00\"\n"
	if err := os.WriteFile(filepath.Join(data, "train.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Init, cfg.Tokenizer, cfg.Dataset, cfg.OutputDir = "tiny", tokDir, data, t.TempDir()
	cfg.MaxSteps, cfg.PerDeviceTrainBatchSize, cfg.SaveStrategy, cfg.NoCache, cfg.SkipBadRecords = 1, 1, "no", true, true
	var buf bytes.Buffer
	res, err := Run(context.Background(), cfg, zerolog.New(&buf), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TrainExamples != 1 {
		t.Errorf("train examples %d, want 1", res.TrainExamples)
	}
	log := buf.String()
	for _, want := range []string{`"skipped":1`, `train.csv:3`, `empty string`, `train.csv:4`, `train.csv:5`, `NUL byte`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}
