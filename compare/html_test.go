package compare

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestHTMLSelfContained parses comparison.html: every table of the report
// is there with the Markdown's rows, every image is an inline PNG data URI
// that decodes, and nothing refers to another file or site.
func TestHTMLSelfContained(t *testing.T) {
	root := t.TempDir()
	dirs := []string{
		seedRun(t, root, "dpo", 42, 0.4, []float64{0.5, 0.5, 0.2}), seedRun(t, root, "orpo", 42, 0.6667, []float64{0.9, 0.4, 0.7}),
		seedRun(t, root, "dpo", 43, 0.6, []float64{0.6, 0.1, 0.4}), seedRun(t, root, "orpo", 43, 0.5667, []float64{0.8, 0.3, 0.6}),
	}
	out := filepath.Join(t.TempDir(), "cmp")
	res, err := Report(dirs, Options{OutputDir: out})
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(out, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]int{} // id -> body rows
	images := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "data:") {
					t.Errorf("<%s %s=%q> refers outside the page", n.Data, a.Key, a.Val)
				}
			}
			switch n.Data {
			case "script", "link", "iframe":
				t.Errorf("<%s> in a self-contained page", n.Data)
			case "table":
				tables[attr(n, "id")] = countRows(n)
			case "img":
				images++
				src := attr(n, "src")
				b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
				if !ok {
					t.Errorf("img %q is not an inline PNG", attr(n, "alt"))
					break
				}
				b, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Errorf("img %q: %v", attr(n, "alt"), err)
					break
				}
				if _, err := png.Decode(bytes.NewReader(b)); err != nil {
					t.Errorf("img %q does not decode: %v", attr(n, "alt"), err)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	// Tables: the runs (4), over seeds (2 configurations × gold, train loss
	// = 4 rows) and the one paired test, as in comparison.md.
	want := map[string]int{"runs": 4, "seeds": 4, "paired": 1}
	for id, n := range want {
		if tables[id] != n {
			t.Errorf("table %q has %d rows, want %d (tables %v)", id, tables[id], n, tables)
		}
	}
	if len(tables) != len(want) {
		t.Errorf("tables %v, want %v", tables, want)
	}
	if plots := len(res.Files) - 2; images != plots || plots < 2 {
		t.Errorf("%d images for %d plots (want gold.png and loss.png at least)", images, plots)
	}
	if !strings.Contains(string(page), "per-prompt") || !strings.Contains(res.Markdown, "per-prompt") {
		t.Error("the paired test's pairing is missing")
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// countRows counts the <tr> under a table's <tbody>.
func countRows(n *html.Node) int {
	rows := 0
	var walk func(*html.Node, bool)
	walk = func(n *html.Node, body bool) {
		if n.Type == html.ElementNode && n.Data == "tr" && body {
			rows++
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, body || n.Type == html.ElementNode && n.Data == "tbody")
		}
	}
	walk(n, false)
	return rows
}
