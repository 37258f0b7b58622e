package datasets

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type pqPair struct {
	Prompt   string `parquet:"prompt"`
	Chosen   string `parquet:"chosen"`
	Rejected string `parquet:"rejected"`
}

// TestLoadHubDataset: --dataset org/ds:cfg reads the Parquet conversion
// from a Hugging Face cache laid out by huggingface_hub (offline, no Hub
// reachable): splits named as on the Hub, shards concatenated in order.
func TestLoadHubDataset(t *testing.T) {
	cache := t.TempDir()
	st := filepath.Join(cache, "datasets--org--ds")
	commit := "0123456789abcdef0123456789abcdef01234567"
	shard := func(name string, rows ...pqPair) {
		var buf bytes.Buffer
		if err := parquet.Write(&buf, rows); err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(st, "blobs", strings.ReplaceAll(name, "/", "_")) // any etag
		os.MkdirAll(filepath.Dir(blob), 0o755)
		os.WriteFile(blob, buf.Bytes(), 0o644)
		ptr := filepath.Join(st, "snapshots", commit, name)
		os.MkdirAll(filepath.Dir(ptr), 0o755)
		rel, _ := filepath.Rel(filepath.Dir(ptr), blob)
		if err := os.Symlink(rel, ptr); err != nil {
			t.Fatal(err)
		}
	}
	shard("cfg/train_prefs/0000.parquet", pqPair{"p1", "c1", "r1"}, pqPair{"p2", "c2", "r2"})
	shard("cfg/train_prefs/0001.parquet", pqPair{"p3", "c3", "r3"})
	shard("cfg/test_prefs/0000.parquet", pqPair{"q1", "c", "r"})
	os.MkdirAll(filepath.Join(st, "refs", "refs", "convert"), 0o755)
	os.WriteFile(filepath.Join(st, "refs", "refs", "convert", "parquet"), []byte(commit), 0o644)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", dead.URL)
	t.Setenv("HF_HUB_OFFLINE", "1")

	s := DefaultScriptArguments()
	s.Dataset, s.TrainSplit, s.TestSplit = "org/ds:cfg", "train_prefs", "test_prefs"
	train, eval, err := s.Load(1)
	if err != nil {
		t.Fatal(err)
	}
	var prompts []string
	for _, r := range train.Records {
		prompts = append(prompts, r["prompt"].(string))
	}
	if strings.Join(prompts, ",") != "p1,p2,p3" || train.Name != "train_prefs" {
		t.Errorf("train %s = %v, want train_prefs p1,p2,p3", train.Name, prompts)
	}
	if eval == nil || eval.Len() != 1 || eval.Records[0]["prompt"] != "q1" {
		t.Errorf("eval = %v, want test_prefs' q1", eval)
	}
	s.Dataset, s.DatasetConfig = "org/ds", "cfg" // TRL's dataset_config
	if train2, _, err := s.Load(1); err != nil || train2.Len() != 3 {
		t.Errorf("dataset_config cfg: %v, %v", train2, err)
	}
	for _, bad := range []ScriptArguments{{Dataset: "org/ds:cfg", DatasetConfig: "cfg"}, {Dataset: cache, DatasetConfig: "cfg"}} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "dataset_config") {
			t.Errorf("%+v: %v, want a dataset_config error", bad, err)
		}
	}
	dd, err := Load("org/ds:cfg", LoadOptions{Split: "test_prefs"})
	if err != nil || len(dd.Splits) != 1 {
		t.Errorf("Split test_prefs: %v, %v", dd, err)
	}
	// The default config is "default", which this cache lacks.
	if _, err := Load("org/ds", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") || !strings.Contains(err.Error(), "no such local file") {
		t.Errorf("missing config offline: %v", err)
	}
	// A missing local data file stays a missing file.
	if _, err := Load("data/train.jsonl", LoadOptions{}); !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "Hub") {
		t.Errorf("missing local file: %v, want a plain not-exist error", err)
	}
}
