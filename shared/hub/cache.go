package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The cache layout (file_download.py, the hf_hub_download docstring):
//
//	$HF_HUB_CACHE/models--org--name/
//	  refs/<revision>                  40-hex commit the revision pointed at
//	  blobs/<etag>                     file contents, named by git sha1 or LFS sha256
//	  snapshots/<commit>/<file>        relative symlink to ../../blobs/<etag>
//	  .no_exist/<commit>/<file>        empty: the file is known not to exist

// storage is the repository's folder in the cache.
func (c *Client) storage(r Repo) string { return filepath.Join(c.CacheDir, r.folder()) }

// cachedCommit maps a revision to a commit from refs/ (a commit maps to
// itself); "" when unknown.
func (c *Client) cachedCommit(r Repo) string {
	if commitRE.MatchString(r.Revision) {
		return r.Revision
	}
	b, err := os.ReadFile(filepath.Join(c.storage(r), "refs", filepath.FromSlash(r.Revision)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// cached looks file up in the cache at the revision: its snapshot path, or
// noExist when a .no_exist marker says the file is absent.
func (c *Client) cached(r Repo, file string) (path string, noExist bool) {
	commit := c.cachedCommit(r)
	if commit == "" {
		return "", false
	}
	p := filepath.Join(c.storage(r), "snapshots", commit, filepath.FromSlash(file))
	if _, err := os.Stat(p); err == nil {
		return p, false
	}
	if _, err := os.Stat(filepath.Join(c.storage(r), ".no_exist", commit, filepath.FromSlash(file))); err == nil {
		return "", true
	}
	return "", false
}

// writeRef records that revision points at commit, atomically
// (_cache_commit_hash_for_specific_revision: temp file, then rename).
func (c *Client) writeRef(r Repo, commit string) error {
	if r.Revision == commit {
		return nil
	}
	p := filepath.Join(c.storage(r), "refs", filepath.FromSlash(r.Revision))
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".ref-*")
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	_, werr := tmp.WriteString(commit)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("hub: write %s: %v", p, errorsJoin(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// link makes pointer a relative symlink to blob (_create_symlink), or a copy
// where symlinks fail.
func link(blob, pointer string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	os.Remove(pointer)
	if err := os.Symlink(rel, pointer); err == nil {
		return nil
	}
	b, err := os.ReadFile(blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.WriteFile(pointer, b, 0o644); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// markNoExist touches .no_exist/<commit>/<file>.
func (c *Client) markNoExist(r Repo, commit, file string) {
	p := filepath.Join(c.storage(r), ".no_exist", commit, filepath.FromSlash(file))
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.Create(p); err == nil {
			f.Close()
		}
	}
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
