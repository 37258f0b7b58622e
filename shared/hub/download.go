package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rlsuite/rl/shared/metrics"
)

// fileURL is hf_hub_url: {endpoint}/{prefix}{repo}/resolve/{quote(rev, safe="")}/{quote(file)}.
func (c *Client) fileURL(r Repo, file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return c.Endpoint + "/" + r.urlPrefix() + r.ID + "/resolve/" + url.PathEscape(r.Revision) + "/" + strings.Join(parts, "/")
}

// Download returns the local path of file in the repository at its
// revision, from the cache when it is there (hf_hub_download): a HEAD
// request gives the commit and blob etag; the blob is fetched only when the
// cache lacks it. When the Hub cannot be reached, the cached copy of the
// revision is used.
func (c *Client) Download(ctx context.Context, r Repo, file string) (string, error) {
	p, _, err := c.download(ctx, r, file)
	return p, err
}

// netError marks a failure to reach the Hub (as opposed to an answer).
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// download is Download, also reporting whether the Hub answered.
func (c *Client) download(ctx context.Context, r Repo, file string) (path string, online bool, err error) {
	if r.Revision == "" {
		r.Revision = "main"
	}
	if err := checkFile(file); err != nil {
		return "", false, fmt.Errorf("hub: %s: %w", r, err)
	}
	// 1. A commit whose snapshot has the file: no network at all.
	if commitRE.MatchString(r.Revision) {
		if p, noExist := c.cached(r, file); p != "" {
			return p, false, nil
		} else if noExist {
			return "", false, c.fail(r, file, ErrEntryNotFound, "")
		}
	}
	if c.Offline {
		return c.fromCache(r, file, "HF_HUB_OFFLINE is set: download it once online, or unset HF_HUB_OFFLINE")
	}
	m, err := c.head(ctx, r, file)
	if err != nil {
		var ne *netError
		if errors.As(err, &ne) {
			return c.fromCache(r, file, fmt.Sprintf("cannot reach %s (%v); set HF_ENDPOINT or download it where the Hub is reachable", c.Endpoint, ne.err))
		}
		if errors.Is(err, ErrEntryNotFound) && m.commit != "" {
			c.markNoExist(r, m.commit, file)
			_ = c.writeRef(r, m.commit)
		}
		return "", true, err
	}
	if err := c.writeRef(r, m.commit); err != nil {
		return "", true, err
	}
	st := c.storage(r)
	pointer := filepath.Join(st, "snapshots", m.commit, filepath.FromSlash(file))
	if _, err := os.Stat(pointer); err == nil {
		return pointer, true, nil
	}
	blob := filepath.Join(st, "blobs", m.etag)
	if _, err := os.Stat(blob); err != nil {
		unlock, err := c.lockBlob(r, m.etag)
		if err != nil {
			return "", true, err
		}
		if _, serr := os.Stat(blob); serr != nil { // not fetched by whoever held the lock
			err = c.fetch(ctx, r, file, m, blob)
		}
		unlock()
		if err != nil {
			return "", true, err
		}
	}
	if err := link(blob, pointer); err != nil {
		return "", true, err
	}
	return pointer, true, nil
}

// fromCache is the offline answer: the revision's cached file, or an error
// that says why not.
func (c *Client) fromCache(r Repo, file, why string) (string, bool, error) {
	p, noExist := c.cached(r, file)
	switch {
	case p != "":
		return p, false, nil
	case noExist:
		return "", false, c.fail(r, file, ErrEntryNotFound, "")
	}
	return "", false, fmt.Errorf("hub: %s %s: %w (cache: %s): %s", r, file, ErrOffline, c.CacheDir, why)
}

// fail is an error naming the repository, the file and what to do.
func (c *Client) fail(r Repo, file string, kind error, detail string) error {
	hint := ""
	switch kind {
	case ErrRepoNotFound:
		hint = fmt.Sprintf("check the id at %s/%s%s; a private repository needs HF_TOKEN (or the token file written by `huggingface-cli login`)", c.Endpoint, r.urlPrefix(), r.ID)
	case ErrGatedRepo:
		hint = fmt.Sprintf("accept its conditions at %s/%s%s and set HF_TOKEN to a token of that account", c.Endpoint, r.urlPrefix(), r.ID)
	case ErrRevisionNotFound:
		hint = fmt.Sprintf("no branch, tag or commit %q: check what follows @", r.Revision)
	}
	msg := fmt.Sprintf("hub: %s %s: %v", r, file, kind)
	if detail != "" {
		msg += " (" + detail + ")"
	}
	if hint != "" {
		msg += ": " + hint
	}
	return &hubError{msg: msg, kind: kind}
}

type hubError struct {
	msg  string
	kind error
}

func (e *hubError) Error() string { return e.msg }
func (e *hubError) Unwrap() error { return e.kind }

// meta is what a HEAD on the resolve URL tells (get_hf_file_metadata).
type meta struct {
	commit, etag, location string
	size                   int64
}

// head asks for the file's metadata, following relative redirects only
// (_httpx_follow_relative_redirects: a renamed repository); an absolute
// redirect is the CDN location to GET later.
func (c *Client) head(ctx context.Context, r Repo, file string) (meta, error) {
	u := c.fileURL(r, file)
	noFollow := *c.HTTP
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return meta{}, fmt.Errorf("hub: %s: %w", u, err)
		}
		c.headers(req)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := noFollow.Do(req)
		if err != nil {
			return meta{}, &netError{err}
		}
		resp.Body.Close()
		m := meta{commit: resp.Header.Get("X-Repo-Commit")}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				return meta{}, fmt.Errorf("hub: %s: bad redirect: %w", u, err)
			}
			if loc.Host == "" && hops < 10 {
				next, _ := url.Parse(u)
				next.Path, next.RawPath, next.RawQuery = loc.Path, loc.RawPath, loc.RawQuery
				u = next.String()
				continue
			}
			base, _ := url.Parse(u)
			m.location = base.ResolveReference(loc).String()
		} else if err := c.status(resp, r, file); err != nil {
			return m, err
		} else {
			m.location = u
		}
		m.etag = normalizeEtag(firstOf(resp.Header.Get("X-Linked-Etag"), resp.Header.Get("ETag")))
		sz := resp.Header.Get("X-Linked-Size")
		if sz == "" && (resp.StatusCode < 300 || resp.StatusCode >= 400) {
			sz = resp.Header.Get("Content-Length")
		}
		switch {
		case m.commit == "":
			return m, fmt.Errorf("hub: %s %s: the answer from %s has no X-Repo-Commit header: HF_ENDPOINT is not a Hugging Face Hub, or a proxy strips its headers", r, file, c.Endpoint)
		case !commitRE.MatchString(m.commit):
			return m, fmt.Errorf("hub: %s %s: X-Repo-Commit %q is not a 40-hex commit", r, file, m.commit)
		case m.etag == "":
			return m, fmt.Errorf("hub: %s %s: the answer from %s has no ETag: a proxy may strip it", r, file, c.Endpoint)
		}
		if m.size, err = strconv.ParseInt(sz, 10, 64); err != nil || m.size < 0 {
			return m, fmt.Errorf("hub: %s %s: the answer from %s has no file size (X-Linked-Size or Content-Length)", r, file, c.Endpoint)
		}
		if strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == ".." {
			return m, fmt.Errorf("hub: %s %s: unusable ETag %q", r, file, m.etag)
		}
		return m, nil
	}
}

// status turns an error answer into huggingface_hub's errors
// (hf_raise_for_status).
func (c *Client) status(resp *http.Response, r Repo, file string) error {
	if resp.StatusCode < 400 {
		return nil
	}
	code, msg := resp.Header.Get("X-Error-Code"), resp.Header.Get("X-Error-Message")
	detail := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if msg != "" {
		detail += ": " + msg
	}
	if id := firstOf(resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Amzn-Trace-Id"), resp.Header.Get("X-Amz-Cf-Id")); id != "" {
		detail += ", request id " + id
	}
	switch {
	case code == "RevisionNotFound":
		return c.fail(r, file, ErrRevisionNotFound, detail)
	case code == "EntryNotFound":
		return c.fail(r, file, ErrEntryNotFound, detail)
	case code == "GatedRepo":
		return c.fail(r, file, ErrGatedRepo, detail)
	case resp.StatusCode == 401 && msg == "Invalid credentials in Authorization header":
		return fmt.Errorf("hub: %s %s: the token was refused (%s): set HF_TOKEN to a valid token", r, file, detail)
	case code == "RepoNotFound" || resp.StatusCode == 401:
		return c.fail(r, file, ErrRepoNotFound, detail)
	case resp.StatusCode >= 500:
		return &netError{fmt.Errorf("%s", detail)}
	}
	return fmt.Errorf("hub: %s %s: %s", r, file, detail)
}

// headers adds the user agent and, for the Hub's own host, the token.
func (c *Client) headers(req *http.Request) {
	req.Header.Set("User-Agent", "rl; hf_hub-compatible")
	if c.Token != "" && c.sameHost(req.URL) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

func (c *Client) sameHost(u *url.URL) bool {
	e, err := url.Parse(c.Endpoint)
	return err == nil && strings.EqualFold(e.Host, u.Host)
}

// fetch GETs m.location into blob, resuming blob.incomplete with Range
// (http_get), and checks the size.
func (c *Client) fetch(ctx context.Context, r Repo, file string, m meta, blob string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	inc := blob + ".incomplete"
	f, err := os.OpenFile(inc, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	done, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if done < m.size || m.size == 0 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.location, nil)
		if err != nil {
			return fmt.Errorf("hub: %s: %w", m.location, err)
		}
		c.headers(req)
		if done > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", done))
		}
		follow := *c.HTTP
		follow.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			if !c.sameHost(req.URL) { // a signed CDN URL: never send the token there
				req.Header.Del("Authorization")
			}
			return nil
		}
		resp, err := follow.Do(req)
		if err != nil {
			return fmt.Errorf("hub: download %s %s: %w (run again to resume)", r, file, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && done > 0:
		case resp.StatusCode == http.StatusOK:
			if done > 0 { // the server ignored Range: start again
				if err := f.Truncate(0); err != nil {
					return fmt.Errorf("hub: %w", err)
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("hub: %w", err)
				}
				done = 0
			}
		default:
			if err := c.status(resp, r, file); err != nil {
				return err
			}
			return fmt.Errorf("hub: download %s %s: HTTP %d", r, file, resp.StatusCode)
		}
		p := metrics.NewProgress(c.Log, fmt.Sprintf("downloading %s %s (bytes)", r.ID, file), int(m.size))
		p.Add(int(done))
		_, err = io.Copy(f, io.TeeReader(resp.Body, progressWriter{p}))
		if err != nil {
			return fmt.Errorf("hub: download %s %s: %w (run again to resume from %s)", r, file, err, inc)
		}
		p.Done()
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	fi, err := os.Stat(inc)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if fi.Size() != m.size {
		os.Remove(inc)
		return fmt.Errorf("hub: download %s %s: got %d bytes, the Hub announced %d: removed %s, run again", r, file, fi.Size(), m.size, inc)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

type progressWriter struct{ p *metrics.Progress }

func (w progressWriter) Write(b []byte) (int, error) { w.p.Add(len(b)); return len(b), nil }

// checkFile refuses a repository path that would leave the snapshot folder
// (it may come from a remote index or listing).
func checkFile(file string) error {
	if file == "" || strings.HasPrefix(file, "/") || strings.Contains(file, "\\") {
		return fmt.Errorf("bad file name %q", file)
	}
	for _, part := range strings.Split(file, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("bad file name %q", file)
		}
	}
	return nil
}

// normalizeEtag strips a weak-validator prefix and quotes (_normalize_etag).
func normalizeEtag(e string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(e), "W/"), `"`)
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
