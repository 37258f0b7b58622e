// Package hub finds Hugging Face Hub repositories in the shared Hub cache
// and downloads them into it the way huggingface_hub does.
//
// The cache layout, environment variables and HTTP protocol follow
// huggingface_hub (src/huggingface_hub/constants.py, file_download.py
// hf_hub_download and _hf_hub_download_to_cache_dir, utils/_http.py
// hf_raise_for_status), so a model downloaded with Python is found here with
// no network, and a model downloaded here is found by Python.
package hub

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultEndpoint is huggingface_hub's ENDPOINT default (constants.py).
const DefaultEndpoint = "https://huggingface.co"

// Errors the Hub reports in its X-Error-Code header (utils/_http.py
// hf_raise_for_status), and offline misses; test with errors.Is.
var (
	ErrRepoNotFound     = errors.New("repository not found")
	ErrGatedRepo        = errors.New("gated repository")
	ErrEntryNotFound    = errors.New("file not found in the repository")
	ErrRevisionNotFound = errors.New("revision not found")
	ErrOffline          = errors.New("not in the local cache") // offline, or the Hub unreachable
)

// Client downloads from a Hub endpoint into a cache folder. The zero value
// is not usable: start from FromEnv.
type Client struct {
	// Endpoint is $HF_ENDPOINT (default https://huggingface.co).
	Endpoint string
	// CacheDir is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub.
	CacheDir string
	// Token is $HF_TOKEN (or $HUGGING_FACE_HUB_TOKEN), else the contents of
	// $HF_TOKEN_PATH (default $HF_HOME/token); "" sends no Authorization.
	Token string
	// Offline is HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1/ON/YES/TRUE:
	// only the cache is read.
	Offline bool
	// HTTP is the client used for every request (default: 10 s dial and
	// header timeouts, no overall timeout so large files can stream).
	HTTP *http.Client
	// Log receives one progress line per download.
	Log zerolog.Logger
}

// Home is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface (constants.py).
func Home() string {
	if h := os.Getenv("HF_HOME"); h != "" {
		return expand(h)
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(expand(x), "huggingface")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface")
}

// FromEnv returns a client configured as huggingface_hub reads its
// environment.
func FromEnv(log zerolog.Logger) *Client {
	c := &Client{Endpoint: DefaultEndpoint, Log: log}
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		c.Endpoint = strings.TrimRight(e, "/")
	}
	c.CacheDir = filepath.Join(Home(), "hub")
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := os.Getenv(k); v != "" {
			c.CacheDir = expand(v)
			break
		}
	}
	c.Token = token()
	c.Offline = isTrue(os.Getenv("HF_HUB_OFFLINE")) || isTrue(os.Getenv("TRANSFORMERS_OFFLINE"))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 10 * time.Second
	c.HTTP = &http.Client{Transport: tr}
	return c
}

// token is huggingface_hub's get_token (utils/_auth.py): the environment,
// then the token file.
func token() string {
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		path = filepath.Join(Home(), "token")
	}
	b, err := os.ReadFile(expand(path))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// isTrue is huggingface_hub's _is_true (constants.py).
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expand(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// Repo names a Hub repository at a revision.
type Repo struct {
	// Type is "model" or "dataset".
	Type string
	// ID is "org/name".
	ID string
	// Revision is a branch, tag or commit (default "main").
	Revision string
}

func (r Repo) String() string {
	s := r.ID
	if r.Type == "dataset" {
		s = "datasets/" + s
	}
	if r.Revision != "" && r.Revision != "main" {
		s += "@" + r.Revision
	}
	return s
}

// folder is huggingface_hub's repo_folder_name: models--org--name.
func (r Repo) folder() string {
	return r.Type + "s--" + strings.ReplaceAll(r.ID, "/", "--")
}

// urlPrefix is "" for models, "datasets/" for datasets (constants.REPO_TYPES_URL_PREFIXES).
func (r Repo) urlPrefix() string {
	if r.Type == "dataset" {
		return "datasets/"
	}
	return ""
}

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// ParseID reads "org/name[@revision]" into a model Repo; ok is false for
// anything else (an absolute or ./ path, one with more than one slash, a
// name without an org).
func ParseID(s string) (r Repo, ok bool) {
	id, rev := s, "main"
	if i := strings.IndexByte(s, '@'); i >= 0 {
		id, rev = s[:i], s[i+1:]
		if rev == "" {
			return Repo{}, false
		}
	}
	if !idRE.MatchString(id) || strings.Contains(id, "..") || strings.HasSuffix(id, ".git") {
		return Repo{}, false
	}
	return Repo{Type: "model", ID: id, Revision: rev}, true
}

// origins remembers which Hub id each resolved folder came from, so that a
// model card can name the Hub id rather than the cache path.
var origins sync.Map // local folder -> "org/name[@rev]"

// Origin returns the Hub id that path was resolved from by this process, or
// path itself.
func Origin(path string) string {
	if v, ok := origins.Load(filepath.Clean(path)); ok {
		return v.(string)
	}
	return path
}
