package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// fakeRepo is a repository of the fake Hub: files at one commit; lfs files
// are served from the CDN.
type fakeRepo struct {
	commit string
	files  map[string][]byte
	lfs    map[string]bool
}

// fakeHub serves huggingface_hub's resolve protocol on 127.0.0.1, with a
// CDN on another host:port for LFS files.
type fakeHub struct {
	hub, cdn    *httptest.Server
	mu          sync.Mutex
	repos       map[string]*fakeRepo
	renamed     map[string]string // old id -> new id
	gated       map[string]bool
	token       string
	log         []string            // "METHOD host path [range]" of every request
	cdnAuth     []string            // Authorization headers the CDN received
	cut         int                 // >0: the next CDN GET sends only this many bytes, then drops
	noRange     bool                // the CDN ignores Range
	getRedirect bool                // GETs of the Hub's own files redirect to the CDN
	blobs       map[string][]byte   // sha256 -> content, for the CDN
	hubAuth     map[string][]string // path -> Authorization seen by the Hub
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{repos: map[string]*fakeRepo{}, renamed: map[string]string{}, gated: map[string]bool{}, blobs: map[string][]byte{}, hubAuth: map[string][]string{}}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(func() { f.hub.Close(); f.cdn.Close() })
	return f
}

func (f *fakeHub) add(id, commit string, files map[string]string, lfs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &fakeRepo{commit: commit, files: map[string][]byte{}, lfs: map[string]bool{}}
	for k, v := range files {
		r.files[k] = []byte(v)
	}
	for _, k := range lfs {
		r.lfs[k] = true
		f.blobs[sha256Hex(r.files[k])] = r.files[k]
	}
	f.repos[id] = r
}

func (f *fakeHub) record(r *http.Request, who string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := r.Method + " " + who + " " + r.URL.EscapedPath()
	if rg := r.Header.Get("Range"); rg != "" {
		s += " " + rg
	}
	f.log = append(f.log, s)
}

func (f *fakeHub) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	f.record(r, "hub")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hubAuth[r.URL.Path] = append(f.hubAuth[r.URL.Path], r.Header.Get("Authorization"))
	if strings.HasPrefix(r.URL.Path, "/api/datasets/") {
		f.serveTree(w, r)
		return
	}
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	path = strings.TrimPrefix(path, "datasets/")
	parts := strings.SplitN(path, "/", 5) // org, name, "resolve", rev, file
	if len(parts) != 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	rev, _ := url.PathUnescape(parts[3])
	file, _ := url.PathUnescape(parts[4])
	id := parts[0] + "/" + parts[1]
	if strings.HasPrefix(r.URL.Path, "/datasets/") {
		id = "datasets/" + id
	}
	if to, ok := f.renamed[id]; ok {
		w.Header().Set("Location", strings.Replace(r.URL.Path, "/"+id+"/", "/"+to+"/", 1))
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	repo, ok := f.repos[id]
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository Not Found")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.gated[id] && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		w.Header().Set("X-Error-Message", "Access to model "+id+" is restricted.")
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if rev != "main" && rev != ParquetRevision && rev != repo.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", repo.commit)
	body, ok := repo.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.Header().Set("X-Error-Message", "Entry not found")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f.getRedirect && r.Method == http.MethodGet {
		sum := sha256Hex(body)
		f.blobs[sum] = body
		w.Header().Set("Location", f.cdn.URL+"/blobs/"+sum+"?sig=xyz")
		w.WriteHeader(http.StatusFound)
		return
	}
	if repo.lfs[file] {
		sum := sha256Hex(body)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(body)))
		w.Header().Set("ETag", `W/"not-the-blob"`)
		w.Header().Set("Location", f.cdn.URL+"/blobs/"+sum+"?sig=xyz")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `W/"`+gitSHA1(body)+`"`)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// serveTree is GET /api/datasets/{org}/{name}/tree/{rev}/{dir}?recursive=true,
// two entries a page, with a Link header to the next page.
func (f *fakeHub) serveTree(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/api/datasets/"), "/", 5) // org, name, "tree", rev, dir
	if len(parts) != 5 || parts[2] != "tree" || parts[3] != url.PathEscape(ParquetRevision) || r.URL.Query().Get("recursive") != "true" {
		http.Error(w, "bad tree request "+r.URL.String(), http.StatusBadRequest)
		return
	}
	repo, ok := f.repos["datasets/"+parts[0]+"/"+parts[1]]
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	dir, _ := url.PathUnescape(parts[4])
	var names []string
	for name := range repo.files {
		if strings.HasPrefix(name, dir+"/") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	sort.Strings(names)
	start := 0
	fmt.Sscan(r.URL.Query().Get("cursor"), &start)
	end := min(start+2, len(names))
	if end < len(names) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?recursive=true&cursor=%d>; rel="next"`, f.hub.URL, r.URL.EscapedPath(), end))
	}
	var out []map[string]any
	for _, n := range names[start:end] {
		out = append(out, map[string]any{"type": "file", "path": n, "size": len(repo.files[n])})
	}
	if start == 0 {
		out = append(out, map[string]any{"type": "directory", "path": dir})
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.record(r, "cdn")
	f.mu.Lock()
	f.cdnAuth = append(f.cdnAuth, r.Header.Get("Authorization"))
	body, ok := f.blobs[strings.TrimPrefix(r.URL.Path, "/blobs/")]
	cut, noRange := f.cut, f.noRange
	f.cut = 0
	f.mu.Unlock()
	if !ok || r.URL.Query().Get("sig") != "xyz" {
		http.NotFound(w, r)
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !noRange {
		fmt.Sscanf(rg, "bytes=%d-", &start)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	}
	if cut > 0 {
		w.Write(body[start : start+cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-file
	}
	w.Write(body[start:])
}

const (
	commitA = "0123456789abcdef0123456789abcdef01234567"
	commitB = "89abcdef0123456789abcdef0123456789abcdef"
)

var tinyFiles = map[string]string{
	"config.json":        `{"model_type":"gpt2"}`,
	"tokenizer.json":     `{"model":{}}`,
	"model.safetensors":  strings.Repeat("weights!", 1000),
	"README.md":          "not needed",
	"flax_model.msgpack": "not needed",
}

func (f *fakeHub) client(t *testing.T) *Client {
	t.Helper()
	return &Client{Endpoint: f.hub.URL, CacheDir: t.TempDir(), HTTP: &http.Client{}, Log: zerolog.Nop()}
}

func readLink(t *testing.T, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("%s is not a symlink: %v", p, err)
	}
	return l
}

// TestDownloadModel: a model's needed files land in the cache in
// huggingface_hub's layout; the CDN never sees the token; the second run
// asks one HEAD only.
func TestDownloadModel(t *testing.T) {
	f := newFakeHub(t)
	f.token = "hf_secret"
	f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
	c := f.client(t)
	c.Token = f.token
	var logs bytes.Buffer
	c.Log = zerolog.New(&logs)
	dir, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "downloading org/tiny model.safetensors (bytes) done: 8,000 in") {
		t.Errorf("no progress line for the weights:\n%s", logs.String())
	}
	st := filepath.Join(c.CacheDir, "models--org--tiny")
	if want := filepath.Join(st, "snapshots", commitA); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	if b, _ := os.ReadFile(filepath.Join(st, "refs", "main")); string(b) != commitA {
		t.Errorf("refs/main = %q, want %s", b, commitA)
	}
	for file, etag := range map[string]string{
		"config.json":       gitSHA1([]byte(tinyFiles["config.json"])),
		"tokenizer.json":    gitSHA1([]byte(tinyFiles["tokenizer.json"])),
		"model.safetensors": sha256Hex([]byte(tinyFiles["model.safetensors"])),
	} {
		if l := readLink(t, filepath.Join(dir, file)); l != "../../blobs/"+etag {
			t.Errorf("%s -> %s, want ../../blobs/%s", file, l, etag)
		}
		if b, err := os.ReadFile(filepath.Join(dir, file)); err != nil || string(b) != tinyFiles[file] {
			t.Errorf("%s: content %q, %v", file, b, err)
		}
	}
	for _, absent := range []string{"README.md", "flax_model.msgpack", "pytorch_model.bin"} {
		if _, err := os.Lstat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("%s downloaded; a model does not need it", absent)
		}
	}
	for _, missing := range []string{"generation_config.json", "model.safetensors.index.json", "vocab.json"} {
		if _, err := os.Stat(filepath.Join(st, ".no_exist", commitA, missing)); err != nil {
			t.Errorf(".no_exist/%s/%s: %v", commitA, missing, err)
		}
	}
	if _, err := os.Stat(filepath.Join(st, ".no_exist", commitA, "pytorch_model.bin")); err == nil {
		t.Errorf("pytorch_model.bin was asked for although model.safetensors exists")
	}
	for _, a := range f.cdnAuth {
		if a != "" {
			t.Errorf("the CDN received Authorization %q", a)
		}
	}
	if len(f.cdnAuth) != 1 {
		t.Errorf("CDN requests = %d, want 1", len(f.cdnAuth))
	}
	if got := f.hubAuth["/org/tiny/resolve/main/config.json"]; len(got) == 0 || got[0] != "Bearer hf_secret" {
		t.Errorf("the Hub received Authorization %q, want the token", got)
	}

	// A GET on the Hub that the Hub redirects to the CDN: the token is dropped on the way.
	f.getRedirect = true
	f.cdnAuth = nil
	f.add("org/tiny2", commitB, tinyFiles)
	if _, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny2"}); err != nil {
		t.Fatal(err)
	}
	if len(f.cdnAuth) != 3 {
		t.Errorf("CDN requests = %d, want 3 (config, tokenizer, weights)", len(f.cdnAuth))
	}
	for _, a := range f.cdnAuth {
		if a != "" {
			t.Errorf("the CDN received Authorization %q after a redirect", a)
		}
	}
	f.getRedirect = false

	before := len(f.requests())
	if dir2, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny"}); err != nil || dir2 != dir {
		t.Fatalf("second run: %s, %v", dir2, err)
	}
	if got := f.requests()[before:]; len(got) != 1 || got[0] != "HEAD hub /org/tiny/resolve/main/config.json" {
		t.Errorf("second run requests = %q, want one HEAD of config.json", got)
	}
}

// TestSharedBlob: a file unchanged between two commits is stored once.
func TestSharedBlob(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
	c := f.client(t)
	if _, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny"}); err != nil {
		t.Fatal(err)
	}
	changed := map[string]string{}
	for k, v := range tinyFiles {
		changed[k] = v
	}
	changed["config.json"] = `{"model_type":"gpt2","n_layer":2}`
	f.add("org/tiny", commitB, changed, "model.safetensors")
	dir, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != commitB {
		t.Errorf("dir = %s, want snapshot %s", dir, commitB)
	}
	blobs, _ := os.ReadDir(filepath.Join(c.CacheDir, "models--org--tiny", "blobs"))
	if len(blobs) != 4 { // two configs, one tokenizer, one weights
		t.Errorf("blobs = %d, want 4 (weights shared by both commits)", len(blobs))
	}
	if n := len(f.cdnAuth); n != 1 {
		t.Errorf("weights fetched %d times, want once", n)
	}
}

// handCache writes a cache entry the way huggingface_hub does: blobs named
// by etag, relative symlinks from snapshots/<commit>/, refs/main.
func handCache(t *testing.T, cache, folder, commit string, files map[string]string) string {
	t.Helper()
	st := filepath.Join(cache, folder)
	for name, body := range files {
		etag := gitSHA1([]byte(body))
		blob := filepath.Join(st, "blobs", etag)
		os.MkdirAll(filepath.Dir(blob), 0o755)
		if err := os.WriteFile(blob, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		ptr := filepath.Join(st, "snapshots", commit, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(ptr), 0o755)
		rel := strings.Repeat("../", strings.Count(name, "/")+2) + "blobs/" + etag
		if err := os.Symlink(rel, ptr); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(st, "refs"), 0o755)
	if err := os.WriteFile(filepath.Join(st, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(st, "snapshots", commit)
}

// TestCacheHitNoNetwork: a cache folder built as huggingface_hub builds it
// is read when the Hub cannot be reached, and offline; nothing is asked.
func TestCacheHitNoNetwork(t *testing.T) {
	cache := t.TempDir()
	want := handCache(t, cache, "models--org--tiny", commitA, map[string]string{"config.json": "{}", "tokenizer.json": "{}", "model.safetensors": "w"})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused
	for _, offline := range []bool{false, true} {
		c := &Client{Endpoint: dead.URL, CacheDir: cache, HTTP: &http.Client{}, Offline: offline, Log: zerolog.Nop()}
		for _, id := range []string{"org/tiny", "org/tiny@" + commitA} {
			r, _ := ParseID(id)
			dir, err := c.Model(context.Background(), r)
			if err != nil || dir != want {
				t.Errorf("offline=%v %s: %s, %v; want %s", offline, id, dir, err, want)
			}
		}
	}
	// HF_HUB_OFFLINE through the environment, via Resolve.
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_ENDPOINT", dead.URL)
	dir, err := ResolveModel(context.Background(), "--model", "org/tiny")
	if err != nil || dir != want {
		t.Errorf("ResolveModel = %s, %v; want %s", dir, err, want)
	}
	if Origin(dir) != "org/tiny" {
		t.Errorf("Origin(%s) = %s, want org/tiny", dir, Origin(dir))
	}
}

// TestOfflineMiss: offline and not cached is ErrOffline, with the cache named.
func TestOfflineMiss(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
	c := f.client(t)
	c.Offline = true
	_, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/tiny"})
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), c.CacheDir) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("err = %v, want ErrOffline naming the cache and HF_HUB_OFFLINE", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests offline, want 0", n)
	}
}

// TestRenamedRepo: a relative redirect is followed; the cache keeps the
// name asked for, as huggingface_hub does.
func TestRenamedRepo(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/new", commitA, tinyFiles, "model.safetensors")
	f.renamed["org/old"] = "org/new"
	c := f.client(t)
	dir, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/old"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(c.CacheDir, "models--org--old", "snapshots", commitA); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err != nil || string(b) != tinyFiles["config.json"] {
		t.Errorf("config.json = %q, %v", b, err)
	}
}

// TestEntryNotFound: a missing file is ErrEntryNotFound and leaves the
// .no_exist marker; asked again at the commit, nothing is requested.
func TestEntryNotFound(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/tiny", commitA, tinyFiles)
	c := f.client(t)
	r := Repo{Type: "model", ID: "org/tiny", Revision: "main"}
	_, err := c.Download(context.Background(), r, "nope.json")
	if !errors.Is(err, ErrEntryNotFound) {
		t.Fatalf("err = %v, want ErrEntryNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(c.CacheDir, "models--org--tiny", ".no_exist", commitA, "nope.json")); err != nil {
		t.Errorf("no .no_exist marker: %v", err)
	}
	n := len(f.requests())
	r.Revision = commitA
	if _, err := c.Download(context.Background(), r, "nope.json"); !errors.Is(err, ErrEntryNotFound) {
		t.Errorf("at the commit: %v, want ErrEntryNotFound", err)
	}
	if len(f.requests()) != n {
		t.Errorf("the marker did not spare the request: %q", f.requests()[n:])
	}
}

// TestHubErrors: gated, missing repositories and revisions become the
// sentinel errors with a hint; a gated repo works with the token.
func TestHubErrors(t *testing.T) {
	f := newFakeHub(t)
	f.token = "hf_ok"
	f.add("org/gated", commitA, tinyFiles)
	f.gated["org/gated"] = true
	c := f.client(t)
	for _, tc := range []struct {
		id   string
		want error
		hint string
	}{
		{"org/gated", ErrGatedRepo, "accept its conditions"},
		{"org/missing", ErrRepoNotFound, "HF_TOKEN"},
		{"org/gated@v9", ErrGatedRepo, ""},
	} {
		r, _ := ParseID(tc.id)
		_, err := c.Model(context.Background(), r)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: err = %v, want %v with %q", tc.id, err, tc.want, tc.hint)
		}
	}
	c.Token = "hf_ok"
	if _, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/gated"}); err != nil {
		t.Errorf("gated with token: %v", err)
	}
	_, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/gated", Revision: "v9"})
	if !errors.Is(err, ErrRevisionNotFound) || !strings.Contains(err.Error(), `"v9"`) {
		t.Errorf("bad revision: %v, want ErrRevisionNotFound naming v9", err)
	}
	_, err = FromEnvFor(t, f.hub.URL).Resolve(context.Background(), "--model", "org/missing")
	if err == nil || !strings.Contains(err.Error(), "--model org/missing: no such local folder") {
		t.Errorf("Resolve: %v, want the flag and the local-path reading named", err)
	}
}

// FromEnvFor is FromEnv pointed at endpoint with a temporary cache.
func FromEnvFor(t *testing.T, endpoint string) *Client {
	t.Setenv("HF_ENDPOINT", endpoint)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HOME", t.TempDir())
	return FromEnv(zerolog.Nop())
}

// TestResume: a download cut mid-file leaves blobs/<etag>.incomplete; the
// next run asks for the rest with Range and the file is whole. A server
// that ignores Range makes it start again.
func TestResume(t *testing.T) {
	for _, noRange := range []bool{false, true} {
		f := newFakeHub(t)
		f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
		f.cut, f.noRange = 3000, noRange
		c := f.client(t)
		r := Repo{Type: "model", ID: "org/tiny", Revision: "main"}
		if _, err := c.Download(context.Background(), r, "model.safetensors"); err == nil {
			t.Fatal("the cut download succeeded")
		}
		sum := sha256Hex([]byte(tinyFiles["model.safetensors"]))
		inc := filepath.Join(c.CacheDir, "models--org--tiny", "blobs", sum+".incomplete")
		if fi, err := os.Stat(inc); err != nil || fi.Size() != 3000 {
			t.Fatalf("incomplete: %v, %v; want 3000 bytes", fi, err)
		}
		p, err := c.Download(context.Background(), r, "model.safetensors")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != tinyFiles["model.safetensors"] {
			t.Errorf("noRange=%v: resumed file differs (%d bytes)", noRange, len(b))
		}
		reqs := f.requests()
		if last := reqs[len(reqs)-1]; last != "GET cdn /blobs/"+sum+" bytes=3000-" {
			t.Errorf("last request %q, want a Range resume from 3000", last)
		}
		if _, err := os.Stat(inc); err == nil {
			t.Errorf("%s left behind", inc)
		}
	}
}

func TestParseID(t *testing.T) {
	for s, want := range map[string]string{
		"org/name": "org/name@main", "Qwen/Qwen2.5-0.5B-Instruct@v1.0": "Qwen/Qwen2.5-0.5B-Instruct@v1.0",
		"gpt2": "", "./org/name": "", "/abs/path": "", "a/b/c": "", "org/": "", "org/name@": "", "../x": "", "org/..": "",
	} {
		r, ok := ParseID(s)
		got := ""
		if ok {
			got = r.ID + "@" + r.Revision
		}
		if got != want {
			t.Errorf("ParseID(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestNormalizeEtag(t *testing.T) {
	for in, want := range map[string]string{`W/"abc"`: "abc", `"abc"`: "abc", "abc": "abc"} {
		if got := normalizeEtag(in); got != want {
			t.Errorf("normalizeEtag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN", "")
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_file\n"), 0o600)
	if got := FromEnv(zerolog.Nop()).Token; got != "hf_file" {
		t.Errorf("token from $HF_HOME/token = %q", got)
	}
	t.Setenv("HF_TOKEN", "hf_env")
	if got := FromEnv(zerolog.Nop()); got.Token != "hf_env" || got.CacheDir != filepath.Join(home, "hub") {
		t.Errorf("token %q cache %s", got.Token, got.CacheDir)
	}
}

// TestDatasetParquet: org/name:config lists the conversion on
// refs/convert/parquet (paginated), downloads every shard into
// datasets--org--name with the ref written as huggingface_hub writes it,
// names the splits as on the Hub (partial-train is train); offline, the
// cached snapshot is listed; a missing config names --dataset.
func TestDatasetParquet(t *testing.T) {
	f := newFakeHub(t)
	f.add("datasets/org/ds", commitA, map[string]string{
		"plain_text/train_prefs/0000.parquet": "a0", "plain_text/train_prefs/0001.parquet": "a1",
		"plain_text/test_prefs/0000.parquet": "b0", "plain_text/partial-train/0000.parquet": "c0",
		"other/train/0000.parquet": "d0", "README.md": "x",
	}, "plain_text/train_prefs/0001.parquet")
	c := f.client(t)
	r, config, ok := ParseDatasetID("org/ds:plain_text")
	if !ok || config != "plain_text" || r.Type != "dataset" || r.Revision != ParquetRevision {
		t.Fatalf("ParseDatasetID = %+v %q %v", r, config, ok)
	}
	got, err := c.DatasetParquet(context.Background(), r, config)
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(c.CacheDir, "datasets--org--ds", "snapshots", commitA)
	want := map[string][]string{
		"train_prefs": {filepath.Join(snap, "plain_text/train_prefs/0000.parquet"), filepath.Join(snap, "plain_text/train_prefs/0001.parquet")},
		"test_prefs":  {filepath.Join(snap, "plain_text/test_prefs/0000.parquet")},
		"train":       {filepath.Join(snap, "plain_text/partial-train/0000.parquet")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files = %v\nwant %v", got, want)
	}
	if b, _ := os.ReadFile(want["train_prefs"][1]); string(b) != "a1" {
		t.Errorf("shard content %q, want a1", b)
	}
	if b, _ := os.ReadFile(filepath.Join(c.CacheDir, "datasets--org--ds", "refs", "refs", "convert", "parquet")); string(b) != commitA {
		t.Errorf("refs/refs/convert/parquet = %q, want %s", b, commitA)
	}
	for _, q := range f.requests() {
		if strings.Contains(q, "/resolve/") && !strings.Contains(q, "/resolve/refs%2Fconvert%2Fparquet/") && !strings.Contains(q, "/resolve/"+commitA+"/") {
			t.Errorf("request %q: the revision is not quoted as huggingface_hub quotes it", q)
		}
	}
	c.Offline = true
	off, err := c.DatasetParquet(context.Background(), r, config)
	if err != nil || fmt.Sprint(off) != fmt.Sprint(want) {
		t.Errorf("offline: %v, %v", off, err)
	}
	c.Offline = false
	if _, err := c.DatasetParquet(context.Background(), r, "nope"); err == nil || !strings.Contains(err.Error(), "--dataset org/ds:CONFIG") {
		t.Errorf("missing config: %v, want a hint naming --dataset org/ds:CONFIG", err)
	}
	for _, bad := range []string{"org/ds@main", "org/ds:", "ds", "org/ds:a/b"} {
		if _, _, ok := ParseDatasetID(bad); ok && bad != "org/ds:" {
			t.Errorf("ParseDatasetID(%q) accepted", bad)
		}
	}
}

// TestConcurrentDownload: two downloads of one blob at once take
// huggingface_hub's .locks/<repo>/<etag>.lock in turn: one fetch, both
// files whole.
func TestConcurrentDownload(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
	c := f.client(t)
	r := Repo{Type: "model", ID: "org/tiny", Revision: "main"}
	var wg sync.WaitGroup
	paths, errs := make([]string, 4), make([]error, 4)
	for i := range paths {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			paths[i], errs[i] = c.Download(context.Background(), r, "model.safetensors")
		}(i)
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if b, _ := os.ReadFile(paths[i]); string(b) != tinyFiles["model.safetensors"] {
			t.Errorf("download %d: %d bytes, not the file", i, len(b))
		}
	}
	if n := len(f.cdnAuth); n != 1 {
		t.Errorf("%d CDN fetches, want 1", n)
	}
	lock := filepath.Join(c.CacheDir, ".locks", "models--org--tiny", sha256Hex([]byte(tinyFiles["model.safetensors"]))+".lock")
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("no lock file: %v", err)
	}
}

// TestModelKinds: a sharded checkpoint brings its index's shards and not
// pytorch_model.bin; a peft adapter its adapter files; a tokenizer
// repository its tokenizer files; a repository with none of them is refused.
func TestModelKinds(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/sharded", commitA, map[string]string{
		"config.json":                      "{}",
		"model.safetensors.index.json":     `{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`,
		"model-00001-of-00002.safetensors": "s1", "model-00002-of-00002.safetensors": "s2", "model-00003-unlisted.safetensors": "x",
		"pytorch_model.bin": "old",
	})
	f.add("org/adapter", commitA, map[string]string{"adapter_config.json": `{"peft_type":"LORA"}`, "adapter_model.safetensors": "a", "tokenizer.json": "{}"})
	f.add("org/tok", commitA, map[string]string{"tokenizer_config.json": "{}", "tokenizer.json": "{}", "model.safetensors": "not needed"})
	f.add("org/bin", commitA, map[string]string{"config.json": "{}", "pytorch_model.bin": "bin"})
	f.add("org/empty", commitA, map[string]string{"README.md": "x"})
	c := f.client(t)
	for id, want := range map[string][]string{
		"org/sharded": {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"},
		"org/adapter": {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"},
		"org/tok":     {"tokenizer.json", "tokenizer_config.json"},
		"org/bin":     {"config.json", "pytorch_model.bin"},
	} {
		r, _ := ParseID(id)
		dir, err := c.Model(context.Background(), r)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		entries, _ := os.ReadDir(dir)
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: files %v, want %v", id, got, want)
		}
	}
	if _, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/empty"}); err == nil || !strings.Contains(err.Error(), "not a transformers model") {
		t.Errorf("org/empty: %v", err)
	}
}

// TestSizeMismatch: a blob shorter than X-Linked-Size is refused and its
// .incomplete removed, so the next run starts clean.
func TestSizeMismatch(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/tiny", commitA, tinyFiles, "model.safetensors")
	sum := sha256Hex([]byte(tinyFiles["model.safetensors"]))
	f.blobs[sum] = f.blobs[sum][:100]
	c := f.client(t)
	_, err := c.Download(context.Background(), Repo{Type: "model", ID: "org/tiny", Revision: "main"}, "model.safetensors")
	if err == nil || !strings.Contains(err.Error(), "got 100 bytes, the Hub announced 8000") {
		t.Fatalf("err = %v, want a size mismatch", err)
	}
	if m, _ := filepath.Glob(filepath.Join(c.CacheDir, "models--org--tiny", "blobs", "*")); len(m) != 0 {
		t.Errorf("left in blobs/: %v", m)
	}
}

// TestShardOutsideSnapshot: an index naming a shard outside the repository
// is refused, nothing is written outside the cache.
func TestShardOutsideSnapshot(t *testing.T) {
	f := newFakeHub(t)
	f.add("org/evil", commitA, map[string]string{"config.json": "{}", "model.safetensors.index.json": `{"weight_map":{"a":"../../../../escaped.safetensors"}}`})
	c := f.client(t)
	_, err := c.Model(context.Background(), Repo{Type: "model", ID: "org/evil"})
	if err == nil || !strings.Contains(err.Error(), "bad file name") {
		t.Errorf("err = %v, want a bad file name", err)
	}
	for _, name := range []string{"a/../b", "/abs", `a\b`, "", "a//b", "ok/file.json"} {
		if err := checkFile(name); (err == nil) != (name == "ok/file.json") {
			t.Errorf("checkFile(%q) = %v", name, err)
		}
	}
}
