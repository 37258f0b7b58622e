package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockBlob takes huggingface_hub's download lock,
// $HF_HUB_CACHE/.locks/<repo folder>/<etag>.lock (file_download.py
// _hf_hub_download_to_cache_dir, WeakFileLock). Python's filelock holds it
// with flock on Unix, so rl and Python processes downloading the same blob
// wait for each other. It blocks until the lock is free.
func (c *Client) lockBlob(r Repo, etag string) (unlock func(), err error) {
	p := filepath.Join(c.CacheDir, ".locks", r.folder(), etag+".lock")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		if err == syscall.ENOLCK || err == syscall.EOPNOTSUPP || err == syscall.ENOSYS {
			return func() {}, nil // no locks on this file system: go on unlocked, as filelock's soft fallback
		}
		return nil, fmt.Errorf("hub: lock %s: %w", p, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
