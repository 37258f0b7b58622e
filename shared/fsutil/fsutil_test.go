package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// listDir returns the sorted entry names of dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// makeTree creates dir with the given file -> content map (nested paths allowed).
func makeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns relative path -> content for every regular file under dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[rel] = readString(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func equalTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing *string
		data     string
		perm     os.FileMode
	}{
		{name: "new file", data: "hello", perm: 0o644},
		{name: "overwrite", existing: ptr("old content that is longer"), data: "new", perm: 0o600},
		{name: "empty", existing: ptr("x"), data: "", perm: 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			if tt.existing != nil {
				if err := os.WriteFile(path, []byte(*tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte(tt.data), tt.perm); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			if got := readString(t, path); got != tt.data {
				t.Errorf("content = %q, want %q", got, tt.data)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != tt.perm {
				t.Errorf("perm = %v, want %v", got, tt.perm)
			}
			if got, want := listDir(t, dir), []string{"f.bin"}; !slices.Equal(got, want) {
				t.Errorf("dir entries = %v, want %v", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "f.bin")
	err := WriteFile(path, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("WriteFile into a missing directory: got nil error, want error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestWriteFileFunc(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(w io.Writer) error
		wantErr error
		want    string // expected content afterwards
	}{
		{
			name: "streams",
			fn: func(w io.Writer) error {
				for i := 0; i < 3; i++ {
					if _, err := io.WriteString(w, "ab"); err != nil {
						return err
					}
				}
				return nil
			},
			want: "ababab",
		},
		{
			name: "large",
			fn: func(w io.Writer) error {
				_, err := w.Write([]byte(strings.Repeat("z", 3<<20)))
				return err
			},
			want: strings.Repeat("z", 3<<20),
		},
		{
			name: "fn error keeps previous",
			fn: func(w io.Writer) error {
				io.WriteString(w, "partial")
				return boom
			},
			wantErr: boom,
			want:    "previous",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.txt")
			if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := WriteFileFunc(path, tt.fn)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("WriteFileFunc error = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
			} else if err != nil {
				t.Fatalf("WriteFileFunc: %v", err)
			}
			if got := readString(t, path); got != tt.want {
				t.Errorf("content = %.40q (len %d), want %.40q (len %d)", got, len(got), tt.want, len(tt.want))
			}
			if got, want := listDir(t, dir), []string{"f.txt"}; !slices.Equal(got, want) {
				t.Errorf("dir entries = %v, want %v (temp file left behind?)", got, want)
			}
		})
	}
}

func TestWriteDir(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		previous map[string]string // nil: final does not exist yet
		write    map[string]string
		fnErr    error
		want     map[string]string // nil: final must not exist
	}{
		{
			name:  "create",
			write: map[string]string{"a.txt": "A", "sub/b.txt": "B"},
			want:  map[string]string{"a.txt": "A", "sub/b.txt": "B"},
		},
		{
			name:     "replace drops old files",
			previous: map[string]string{"a.txt": "old A", "only-old.txt": "x"},
			write:    map[string]string{"a.txt": "new A"},
			want:     map[string]string{"a.txt": "new A"},
		},
		{
			name:     "fn error keeps previous",
			previous: map[string]string{"a.txt": "old A"},
			write:    map[string]string{"a.txt": "half written"},
			fnErr:    boom,
			want:     map[string]string{"a.txt": "old A"},
		},
		{
			name:  "fn error on first write leaves nothing",
			write: map[string]string{"a.txt": "half written"},
			fnErr: boom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			final := filepath.Join(parent, "ckpt")
			if tt.previous != nil {
				makeTree(t, final, tt.previous)
			}
			err := WriteDir(final, func(tmp string) error {
				if got, want := tmp, final+".tmp"; got != want {
					t.Errorf("tmp dir = %s, want %s", got, want)
				}
				if got := listDir(t, tmp); len(got) != 0 {
					t.Errorf("tmp dir not empty at start: %v", got)
				}
				makeTree(t, tmp, tt.write)
				return tt.fnErr
			})
			if tt.fnErr != nil {
				if !errors.Is(err, tt.fnErr) {
					t.Fatalf("WriteDir error = %v, want %v", err, tt.fnErr)
				}
				if !strings.Contains(err.Error(), final) {
					t.Errorf("error %q does not name %s", err, final)
				}
			} else if err != nil {
				t.Fatalf("WriteDir: %v", err)
			}
			if tt.want == nil {
				if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("final exists after failed first write (stat err %v)", err)
				}
			} else if got := readTree(t, final); !equalTree(got, tt.want) {
				t.Errorf("final = %v, want %v", got, tt.want)
			}
			wantEntries := []string{"ckpt"}
			if tt.want == nil {
				wantEntries = nil
			}
			if got := listDir(t, parent); !slices.Equal(got, wantEntries) {
				t.Errorf("parent entries = %v, want %v", got, wantEntries)
			}
		})
	}
}

func TestWriteDirStaleTmp(t *testing.T) {
	parent := t.TempDir()
	final := filepath.Join(parent, "ckpt")
	makeTree(t, final+".tmp", map[string]string{"junk": "from a crashed run"})
	err := WriteDir(final, func(tmp string) error {
		makeTree(t, tmp, map[string]string{"a": "1"})
		return nil
	})
	if err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	if got, want := readTree(t, final), map[string]string{"a": "1"}; !equalTree(got, want) {
		t.Errorf("final = %v, want %v", got, want)
	}
}

// TestRecoverDir simulates a crash at each point of WriteDir by laying out the
// on-disk state it would leave, then checks RecoverDir (and a following
// WriteDir) restore a complete final.
func TestRecoverDir(t *testing.T) {
	oldTree := map[string]string{"w": "old"}
	newTree := map[string]string{"w": "new"}
	partial := map[string]string{"w": "ne"}
	tests := []struct {
		name            string
		final, tmp, old map[string]string // nil: absent
		wantFinal       map[string]string // nil: absent
	}{
		{name: "nothing"},
		{name: "clean", final: oldTree, wantFinal: oldTree},
		{name: "tmp without final (first write crashed)", tmp: partial},
		{name: "tmp next to final (crash before swap)", final: oldTree, tmp: partial, wantFinal: oldTree},
		{name: "old without final (crash between renames)", tmp: newTree, old: oldTree, wantFinal: oldTree},
		{name: "old only", old: oldTree, wantFinal: oldTree},
		{name: "old next to final (crash before cleanup)", final: newTree, old: oldTree, wantFinal: newTree},
		{name: "partially removed old next to final", final: newTree, old: map[string]string{}, wantFinal: newTree},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			final := filepath.Join(parent, "ckpt")
			for _, s := range []struct {
				path string
				tree map[string]string
			}{{final, tt.final}, {final + ".tmp", tt.tmp}, {final + ".old", tt.old}} {
				if s.tree != nil {
					if err := os.MkdirAll(s.path, 0o755); err != nil {
						t.Fatal(err)
					}
					makeTree(t, s.path, s.tree)
				}
			}
			if err := RecoverDir(final); err != nil {
				t.Fatalf("RecoverDir: %v", err)
			}
			checkRecovered(t, parent, final, tt.wantFinal)
			// Recovery is idempotent.
			if err := RecoverDir(final); err != nil {
				t.Fatalf("second RecoverDir: %v", err)
			}
			checkRecovered(t, parent, final, tt.wantFinal)
			// And WriteDir works from the recovered state.
			if err := WriteDir(final, func(tmp string) error {
				makeTree(t, tmp, map[string]string{"w": "next"})
				return nil
			}); err != nil {
				t.Fatalf("WriteDir after recovery: %v", err)
			}
			checkRecovered(t, parent, final, map[string]string{"w": "next"})
		})
	}
}

func checkRecovered(t *testing.T, parent, final string, want map[string]string) {
	t.Helper()
	var wantEntries []string
	if want != nil {
		wantEntries = []string{filepath.Base(final)}
		if got := readTree(t, final); !equalTree(got, want) {
			t.Errorf("final = %v, want %v", got, want)
		}
	}
	if got := listDir(t, parent); !slices.Equal(got, wantEntries) {
		t.Errorf("parent entries = %v, want %v", got, wantEntries)
	}
}

// TestLock: a second Lock on a held dir fails with ErrLocked and the
// holder's pid; after unlock it succeeds.
func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Lock: err = %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
