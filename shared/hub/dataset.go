package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ParquetRevision is the branch on which the Hub's dataset viewer stores
// every public dataset converted to Parquet, as
// {config}/{split}/NNNN.parquet (or {config}/partial-{split}/ when only
// part was converted) (huggingface/dataset-viewer docs/source/parquet.md).
const ParquetRevision = "refs/convert/parquet"

// DefaultConfig is the config name of a dataset without named configs.
const DefaultConfig = "default"

var configRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ParseDatasetID reads "org/name[:config]" into a dataset Repo at
// ParquetRevision and its config (default "default"); ok is false for
// anything else.
func ParseDatasetID(s string) (r Repo, config string, ok bool) {
	id, config, _ := strings.Cut(s, ":")
	if config == "" {
		config = DefaultConfig
	}
	if strings.Contains(s, "@") || !configRE.MatchString(config) {
		return Repo{}, "", false
	}
	m, ok := ParseID(id)
	if !ok {
		return Repo{}, "", false
	}
	return Repo{Type: "dataset", ID: m.ID, Revision: ParquetRevision}, config, true
}

// DatasetParquet makes the Parquet files of a dataset's config available in
// the cache (datasets--org--name, revision refs/convert/parquet) and returns
// them by split, in shard order, with the splits named as on the Hub. The
// files are listed with the Hub's tree API (GET
// /api/datasets/{id}/tree/{revision}/{config}?recursive=true, as
// HfApi.list_repo_tree) and fetched like any file; offline, or when the Hub
// cannot be reached, the cached snapshot is listed instead.
func (c *Client) DatasetParquet(ctx context.Context, r Repo, config string) (map[string][]string, error) {
	if r.Revision == "" {
		r.Revision = ParquetRevision
	}
	if c.Offline {
		return c.cachedParquet(r, config, "HF_HUB_OFFLINE is set: download it once online, or unset HF_HUB_OFFLINE")
	}
	files, err := c.listTree(ctx, r, config)
	var ne *netError
	if errors.As(err, &ne) {
		return c.cachedParquet(r, config, fmt.Sprintf("cannot reach %s (%v)", c.Endpoint, ne.err))
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	pinned := r
	for _, f := range files {
		split, ok := parquetSplit(f, config)
		if !ok {
			continue
		}
		p, err := c.Download(ctx, pinned, f)
		if err != nil {
			return nil, err
		}
		if pinned.Revision == r.Revision { // the rest from the same commit
			if commit := c.cachedCommit(r); commit != "" {
				pinned.Revision = commit
			}
		}
		out[split] = append(out[split], p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hub: %s has no Parquet files for config %q on %s: name another config with --dataset %s:CONFIG", r, config, ParquetRevision, r.ID)
	}
	for _, ps := range out {
		sort.Strings(ps)
	}
	return out, nil
}

// parquetSplit is the split of a converted file {config}/{split}/NNNN.parquet
// or {config}/partial-{split}/NNNN.parquet.
func parquetSplit(path, config string) (string, bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 3 || parts[0] != config || !strings.HasSuffix(parts[2], ".parquet") {
		return "", false
	}
	return strings.TrimPrefix(parts[1], "partial-"), true
}

// cachedParquet lists the cached snapshot of the conversion.
func (c *Client) cachedParquet(r Repo, config, why string) (map[string][]string, error) {
	commit := c.cachedCommit(r)
	if commit != "" {
		snap := filepath.Join(c.storage(r), "snapshots", commit)
		matches, _ := filepath.Glob(filepath.Join(snap, config, "*", "*.parquet"))
		out := map[string][]string{}
		for _, m := range matches {
			rel, _ := filepath.Rel(snap, m)
			if split, ok := parquetSplit(filepath.ToSlash(rel), config); ok {
				out[split] = append(out[split], m)
			}
		}
		if len(out) > 0 {
			for _, ps := range out {
				sort.Strings(ps)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("hub: %s config %s: %w (cache: %s): %s", r, config, ErrOffline, c.CacheDir, why)
}

// listTree lists the files under dir at the revision, following the
// pagination Link header.
func (c *Client) listTree(ctx context.Context, r Repo, dir string) ([]string, error) {
	u := fmt.Sprintf("%s/api/%ss/%s/tree/%s/%s?recursive=true", c.Endpoint, r.Type, r.ID, url.PathEscape(r.Revision), url.PathEscape(dir))
	var out []string
	for page := 0; u != "" && page < 1000; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("hub: %s: %w", u, err)
		}
		c.headers(req)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return nil, &netError{err}
		}
		if err := c.status(resp, r, dir+"/"); err != nil {
			resp.Body.Close()
			if errors.Is(err, ErrEntryNotFound) {
				return nil, fmt.Errorf("hub: %s has no config %q on %s: name one with --dataset %s:CONFIG", r, dir, ParquetRevision, r.ID)
			}
			return nil, err
		}
		var entries []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		}
		err = json.NewDecoder(resp.Body).Decode(&entries)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("hub: %s: tree listing: %w", r, err)
		}
		for _, e := range entries {
			if e.Type == "file" {
				out = append(out, e.Path)
			}
		}
		u = nextLink(resp.Header.Get("Link"))
	}
	return out, nil
}

// nextLink is the rel="next" URL of a Link header, or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		if strings.Contains(part, `rel="next"`) {
			if i, j := strings.Index(part, "<"), strings.Index(part, ">"); i >= 0 && j > i {
				return part[i+1 : j]
			}
		}
	}
	return ""
}

// ResolveDataset is DatasetParquet with a client from the environment.
func ResolveDataset(ctx context.Context, r Repo, config string) (map[string][]string, error) {
	return FromEnv(Log).DatasetParquet(ctx, r, config)
}
