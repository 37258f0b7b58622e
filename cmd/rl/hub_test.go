package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fillCache copies a model folder into a Hugging Face cache as
// huggingface_hub lays it out (blobs by git sha1, relative symlinks,
// refs/main) and returns the snapshot folder.
func fillCache(t *testing.T, cache, id, commit, src string) string {
	t.Helper()
	st := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
	snap := filepath.Join(st, "snapshots", commit)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(b)
		etag := hex.EncodeToString(sum[:])
		os.MkdirAll(filepath.Join(st, "blobs"), 0o755)
		os.MkdirAll(snap, 0o755)
		if err := os.WriteFile(filepath.Join(st, "blobs", etag), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../blobs/"+etag, filepath.Join(snap, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(st, "refs"), 0o755)
	if err := os.WriteFile(filepath.Join(st, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestSFTFromHubCache: rl sft --model org/tiny trains from a pre-filled
// Hugging Face cache with HF_HUB_OFFLINE=1 and no reachable Hub; a missing
// id fails naming the flag, the cache and HF_HUB_OFFLINE.
func TestSFTFromHubCache(t *testing.T) {
	cache := t.TempDir()
	fillCache(t, cache, "org/tiny", "0123456789abcdef0123456789abcdef01234567", tinyModel(t, "lm"))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", dead.URL)
	t.Setenv("HF_HUB_OFFLINE", "1")
	dir := t.TempDir()
	data := filepath.Join(dir, "sft.jsonl")
	os.WriteFile(data, []byte(strings.Repeat(`{"prompt":"the quick brown","completion":" fox jumps"}`+"\n", 4)), 0o644)
	out := filepath.Join(dir, "out")
	args := []string{"sft", "--model", "org/tiny", "--dataset", data, "--output-dir", out, "--max-steps", "2", "--per-device-train-batch-size", "2", "--save-strategy", "no", "--logging-steps", "1"}
	if err := rlApp(t, args...); err != nil {
		t.Fatalf("rl sft --model org/tiny: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Errorf("no trained model: %v", err)
	}
	// The other commands take the id too.
	if code, stdout, stderr := rl(t, "generate", "--model", "org/tiny", "-p", "the quick", "--max-new-tokens", "2"); code != 0 || len(jsonLines(t, stdout)) != 1 {
		t.Errorf("rl generate --model org/tiny: exit %d, %q, %s", code, stdout, stderr)
	}
	if out, err := runApp(t, "tokenizer", "encode", "--tokenizer", "org/tiny", "the quick"); err != nil || !strings.HasPrefix(out, "[") {
		t.Errorf("rl tokenizer encode --tokenizer org/tiny: %q, %v", out, err)
	}
	args[2] = "org/absent"
	err := rlApp(t, append(args[:len(args):len(args)], "--output-dir", filepath.Join(dir, "out2"))...)
	if err == nil || !strings.Contains(err.Error(), "--model org/absent") || !strings.Contains(err.Error(), cache) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("missing id: %v, want the flag, the cache and HF_HUB_OFFLINE named", err)
	}
}

// TestSFTDownloadsFromHub: rl sft --model org/tiny with an empty cache
// downloads the model from the Hub (a fake one on 127.0.0.1 serving
// huggingface_hub's resolve protocol) into the cache, and trains from it.
func TestSFTDownloadsFromHub(t *testing.T) {
	src := tinyModel(t, "lm")
	const commit = "89abcdef0123456789abcdef0123456789abcdef"
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Method+" "+r.URL.Path)
		file, ok := strings.CutPrefix(r.URL.Path, "/org/tiny/resolve/main/")
		if !ok {
			file, ok = strings.CutPrefix(r.URL.Path, "/org/tiny/resolve/"+commit+"/")
		}
		if !ok {
			w.Header().Set("X-Error-Code", "RepoNotFound")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Repo-Commit", commit)
		b, err := os.ReadFile(filepath.Join(src, file))
		if err != nil || strings.Contains(file, "/") {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		sum := sha1.Sum(b)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(b))
	}))
	defer srv.Close()
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	dir := t.TempDir()
	data := filepath.Join(dir, "sft.jsonl")
	os.WriteFile(data, []byte(strings.Repeat(`{"prompt":"the quick brown","completion":" fox jumps"}`+"\n", 4)), 0o644)
	out := filepath.Join(dir, "out")
	if err := rlApp(t, "sft", "--model", "org/tiny", "--dataset", data, "--output-dir", out, "--max-steps", "1", "--per-device-train-batch-size", "2", "--save-strategy", "no"); err != nil {
		t.Fatalf("rl sft --model org/tiny: %v (requests %q)", err, asked)
	}
	snap := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		if l, err := os.Readlink(filepath.Join(snap, f)); err != nil || !strings.HasPrefix(l, "../../blobs/") {
			t.Errorf("%s: %q, %v; want a symlink into blobs/", f, l, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(cache, "models--org--tiny", "refs", "main")); string(b) != commit {
		t.Errorf("refs/main = %q", b)
	}
	if card, _ := os.ReadFile(filepath.Join(out, "README.md")); !strings.Contains(string(card), "base_model: org/tiny\n") {
		t.Errorf("card:\n%s", card)
	}
}

// TestResolveHubFields: every model path of a trainer Config, strings and
// reward_funcs lists, is resolved; builtin:, cmd: and local paths are left.
func TestResolveHubFields(t *testing.T) {
	cache := t.TempDir()
	snap := fillCache(t, cache, "org/tiny", "0123456789abcdef0123456789abcdef01234567", tinyModel(t, "lm"))
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	local := t.TempDir()
	cfg := struct {
		Inner struct {
			Model string `yaml:"model_name_or_path" alias:"model"`
		} `yaml:",inline"`
		Ref     string   `yaml:"ref_model"`
		Funcs   []string `yaml:"reward_funcs"`
		Output  string   `yaml:"output_dir"`
		Dataset string   `yaml:"dataset_name"`
	}{Ref: local, Funcs: []string{"builtin:length", "org/tiny", "cmd:./score.sh --x"}, Output: "org/tiny", Dataset: "org/tiny"}
	cfg.Inner.Model = "org/tiny"
	if err := resolveHub(context.Background(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Inner.Model != snap || cfg.Ref != local || cfg.Funcs[0] != "builtin:length" || cfg.Funcs[1] != snap || cfg.Funcs[2] != "cmd:./score.sh --x" || cfg.Output != "org/tiny" || cfg.Dataset != "org/tiny" {
		t.Errorf("resolved %+v", cfg)
	}
}
