// Package fsutil provides crash-safe atomic file and directory writes for checkpoints.
package fsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Suffixes of the sibling directories used by WriteDir.
const (
	TmpSuffix = ".tmp"
	OldSuffix = ".old"
)

// WriteFile atomically replaces path with data: it writes a temporary file in
// the same directory, fsyncs it, sets perm (exactly, ignoring the umask),
// renames it over path and fsyncs the directory. A reader sees either the
// complete old content or the complete new content. A crash may leave a
// hidden "."+name+".tmp-*" file behind in the directory. Concurrent writers
// to the same path are not coordinated (the last rename wins).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFileFunc is WriteFile for streamed content: fn writes to a buffered
// writer backed by the temporary file. The file gets mode 0644. If fn fails,
// path is left untouched and the temporary file is removed.
func WriteFileFunc(path string, fn func(w io.Writer) error) error {
	return writeAtomic(path, 0o644, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := fn(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func writeAtomic(path string, perm os.FileMode, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				tmp.Close()
			}
			os.Remove(tmpName)
		}
	}()
	if err = fill(tmp); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsutil: write %s: sync: %w", path, err)
	}
	closed = true
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	if err = SyncDir(dir); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable. File systems that do not support syncing directories
// (EINVAL) are tolerated.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsutil: sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsutil: sync dir %s: %w", dir, err)
	}
	return nil
}

// WriteDir atomically creates or replaces the directory final.
//
// It first calls RecoverDir(final), then removes a stale final+".tmp", creates
// it empty and lets fn fill it. If fn fails, the temporary directory is
// removed and final is left as it was. Otherwise every file and directory in
// the tree is fsynced, an existing final is renamed to final+".old", the
// temporary directory is renamed to final, and final+".old" is removed, with
// the parent directory fsynced after each step.
//
// A crash at any point leaves one of these states, all of which RecoverDir
// turns back into "final is complete (old or new), no .tmp, no .old":
//
//	final (old) + .tmp (partial or complete)  -> .tmp removed, old final kept
//	.old (old)  + .tmp (complete), no final   -> .old renamed back to final, .tmp removed
//	final (new) + .old (old, maybe partial)   -> .old removed, new final kept
//	.tmp only (first write)                   -> .tmp removed, no final
//
// Readers that may start after a crash should call RecoverDir before reading.
// WriteDir is not safe against concurrent writers (or RecoverDir calls) on
// the same final; callers must serialise them.
func WriteDir(final string, fn func(tmpDir string) error) error {
	final = filepath.Clean(final)
	parent := filepath.Dir(final)
	if err := RecoverDir(final); err != nil {
		return err
	}
	tmp := final + TmpSuffix
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if err := fn(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if err := syncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	old := final + OldSuffix
	hadFinal, err := exists(final)
	if err != nil {
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if hadFinal {
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("fsutil: write dir %s: %w", final, err)
		}
		if err := SyncDir(parent); err != nil {
			return fmt.Errorf("fsutil: write dir %s: %w", final, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if hadFinal {
			os.Rename(old, final) // best effort; RecoverDir would do the same
		}
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("fsutil: write dir %s: %w", final, err)
	}
	if hadFinal {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("fsutil: write dir %s: remove previous version: %w", final, err)
		}
		if err := SyncDir(parent); err != nil {
			return fmt.Errorf("fsutil: write dir %s: %w", final, err)
		}
	}
	return nil
}

// RecoverDir repairs the leftovers of a WriteDir on final that was interrupted
// by a crash: a final+".old" without final is renamed back to final (the
// previous complete version), a final+".old" next to final is removed (final
// is the new complete version), and any final+".tmp" is removed (it is either
// incomplete or superseded). It is a no-op when there is nothing to repair,
// including when nothing exists at all.
func RecoverDir(final string) error {
	final = filepath.Clean(final)
	parent := filepath.Dir(final)
	tmp, old := final+TmpSuffix, final+OldSuffix
	hasFinal, err := exists(final)
	if err != nil {
		return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
	}
	hasOld, err := exists(old)
	if err != nil {
		return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
	}
	hasTmp, err := exists(tmp)
	if err != nil {
		return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
	}
	if !hasOld && !hasTmp {
		return nil
	}
	if hasOld {
		if hasFinal {
			err = os.RemoveAll(old)
		} else {
			err = os.Rename(old, final)
		}
		if err != nil {
			return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
		}
	}
	if hasTmp {
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
		}
	}
	if err := SyncDir(parent); err != nil {
		return fmt.Errorf("fsutil: recover dir %s: %w", final, err)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// syncTree fsyncs every regular file and directory under root (root included).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // symlinks and special files: nothing to sync
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		serr := f.Sync()
		cerr := f.Close()
		if serr != nil && !(d.IsDir() && errors.Is(serr, syscall.EINVAL)) {
			return fmt.Errorf("sync %s: %w", path, serr)
		}
		return cerr
	})
}

// LockFileName is the file in a directory that Lock holds.
const LockFileName = ".rl.lock"

// ErrLocked is returned (wrapped) by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// ErrLockUnsupported is returned (wrapped) by Lock, with a no-op unlock,
// when the file system does not support flock (some network file systems).
var ErrLockUnsupported = errors.New("the file system does not support locks")

// Lock takes an exclusive, non-blocking flock on dir/.rl.lock (creating dir
// and the file) and writes this process's pid into it. The lock lasts until
// unlock is called or the process exits (the kernel releases it, even after
// kill -9). When another process holds it, the error wraps ErrLocked and
// names that process's pid.
func Lock(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fsutil: lock %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fsutil: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := "unknown"
			if b, rerr := os.ReadFile(path); rerr == nil && len(b) > 0 {
				pid = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("%s is in use by another run (pid %s): %w", dir, pid, ErrLocked)
		}
		if errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			return func() error { return nil }, fmt.Errorf("fsutil: lock %s: %w (%v)", dir, ErrLockUnsupported, err)
		}
		return nil, fmt.Errorf("fsutil: lock %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() error {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return f.Close()
	}, nil
}
