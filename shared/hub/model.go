package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rs/zerolog"
)

// Files transformers' from_pretrained reads besides the weights: the
// configs and every tokenizer file format (transformers' tokenization_utils
// and generation/configuration_utils).
var (
	configFiles    = []string{"generation_config.json"}
	tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json"}
)

// Model makes the files a model needs available in the cache and returns
// its snapshot folder: config.json, generation_config.json, the tokenizer
// files, then the weights — model.safetensors.index.json and its shards, or
// model.safetensors, or (only when there are no safetensors)
// pytorch_model.bin and its index; for a peft adapter
// adapter_config.json and adapter_model.safetensors (or .bin); for a
// tokenizer repository (tokenizer_config.json, no config.json) the
// tokenizer files only. Files the
// repository lacks are remembered in .no_exist so that the next run asks
// nothing. Offline, or when the Hub cannot be reached, the cached snapshot
// of the revision is used.
func (c *Client) Model(ctx context.Context, r Repo) (string, error) {
	if r.Revision == "" {
		r.Revision = "main"
	}
	if c.Offline {
		return c.cachedModel(r, "HF_HUB_OFFLINE is set: download it once online, or unset HF_HUB_OFFLINE")
	}
	adapter, tokenizerOnly := false, false
	cfg, online, err := c.download(ctx, r, "config.json")
	if errors.Is(err, ErrEntryNotFound) {
		adapter = true
		cfg, online, err = c.download(ctx, r, "adapter_config.json")
	}
	if errors.Is(err, ErrEntryNotFound) { // perhaps a tokenizer repository
		tokenizerOnly = true
		cfg, online, err = c.download(ctx, r, "tokenizer_config.json")
		if errors.Is(err, ErrEntryNotFound) {
			return "", fmt.Errorf("hub: %s has no config.json, adapter_config.json or tokenizer_config.json: it is not a transformers model, a peft adapter or a tokenizer", r)
		}
	}
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(cfg)
	if !online { // answered from the cache: use the snapshot as it is
		return dir, nil
	}
	pinned := r
	pinned.Revision = filepath.Base(dir) // every file from the same commit, as snapshot_download does
	optional := func(files ...string) (got []string, err error) {
		for _, f := range files {
			p, err := c.Download(ctx, pinned, f)
			if errors.Is(err, ErrEntryNotFound) {
				continue
			}
			if err != nil {
				return got, err
			}
			got = append(got, p)
		}
		return got, nil
	}
	if _, err := optional(append(append([]string{}, configFiles...), tokenizerFiles...)...); err != nil {
		return "", err
	}
	if tokenizerOnly {
		return dir, nil
	}
	weights := [][]string{{"model.safetensors.index.json"}, {"model.safetensors"}, {"pytorch_model.bin.index.json"}, {"pytorch_model.bin"}}
	if adapter {
		weights = [][]string{{"adapter_model.safetensors"}, {"adapter_model.bin"}}
	}
	for _, w := range weights {
		got, err := optional(w...)
		if err != nil {
			return "", err
		}
		if len(got) == 0 {
			continue
		}
		if filepath.Ext(got[0]) == ".json" { // a sharded checkpoint: its shards
			shards, err := indexShards(got[0])
			if err != nil {
				return "", err
			}
			for _, s := range shards {
				if _, err := c.Download(ctx, pinned, s); err != nil {
					return "", err
				}
			}
		}
		return dir, nil
	}
	return "", fmt.Errorf("hub: %s has no weights (model.safetensors, its index, or pytorch_model.bin)", pinned)
}

// cachedModel is the revision's snapshot folder when it holds a model.
func (c *Client) cachedModel(r Repo, why string) (string, error) {
	for _, f := range []string{"config.json", "adapter_config.json", "tokenizer_config.json"} {
		if p, _ := c.cached(r, f); p != "" {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("hub: %s: %w (cache: %s): %s", r, ErrOffline, c.CacheDir, why)
}

// indexShards lists the files an index's weight_map points at.
func indexShards(index string) ([]string, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("hub: %s: %w", index, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range idx.WeightMap {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Resolve returns path unchanged when it names an existing file or folder,
// or when it is not of the form org/name[@revision]; otherwise it is a Hub
// model id, made available in the cache, and the snapshot folder is returned.
// what names the option in errors ("--model").
func (c *Client) Resolve(ctx context.Context, what, path string) (string, error) {
	if path == "" {
		return path, nil
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	r, ok := ParseID(path)
	if !ok {
		return path, nil
	}
	dir, err := c.Model(ctx, r)
	if err != nil {
		return "", fmt.Errorf("%s %s: no such local folder, and as a Hub model id: %w", what, path, err)
	}
	origins.Store(filepath.Clean(dir), path)
	c.Log.Info().Str("flag", what).Str("hub_id", path).Str("path", dir).Msg("hub model")
	return dir, nil
}

// Log receives the progress of ResolveModel's downloads; cmd/rl sets it to
// its logger (default: none).
var Log = zerolog.Nop()

// ResolveModel is Resolve with a client configured from the environment
// (FromEnv(Log)); it asks nothing of the environment for a local path.
func ResolveModel(ctx context.Context, what, path string) (string, error) {
	if path == "" {
		return path, nil
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if _, ok := ParseID(path); !ok {
		return path, nil
	}
	return FromEnv(Log).Resolve(ctx, what, path)
}
