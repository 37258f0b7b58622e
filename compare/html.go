package compare

import (
	"encoding/base64"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
)

// HTMLFile is the name of the self-contained page Report writes next to
// comparison.md: the same tables, with every plot inlined as a data URI.
const HTMLFile = "comparison.html"

// table is a header and rows of cells, rendered as Markdown or HTML.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) markdown(b *strings.Builder) {
	writeRow(b, t.header)
	seps := make([]string, len(t.header))
	for i := range seps {
		seps[i] = "---"
	}
	writeRow(b, seps)
	for _, r := range t.rows {
		writeRow(b, r)
	}
}

func (t *table) html(b *strings.Builder, id string) {
	fmt.Fprintf(b, "<table id=%q>\n<thead><tr>", id)
	for _, h := range t.header {
		b.WriteString("<th>" + html.EscapeString(h) + "</th>")
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range t.rows {
		b.WriteString("<tr>")
		for _, c := range r {
			b.WriteString("<td>" + html.EscapeString(c) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
}

// section is a titled part of the report: paragraphs and a table.
type section struct {
	title, id string
	text      []string
	table     *table
}

// document is the report, before it is written as Markdown or HTML.
type document struct {
	sections []section
	plots    []string // PNG paths
}

func (d *document) markdown() string {
	var b strings.Builder
	b.WriteString("# Comparison\n\n")
	for i, s := range d.sections {
		if i > 0 {
			b.WriteString("\n## " + s.title + "\n\n")
		}
		if s.table != nil {
			s.table.markdown(&b)
		}
		for _, p := range s.text {
			b.WriteString("\n" + p + "\n")
		}
	}
	if len(d.plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range d.plots {
			name := filepath.Base(p)
			fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(name, ".png"), name)
		}
	}
	return b.String()
}

const htmlStyle = `body{font-family:sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse;margin:1em 0;font-size:90%}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left}
th{background:#eee}
img{max-width:100%;display:block;margin:1em 0}`

// html renders the page, reading each plot and inlining it as a base64
// data URI, so the page needs nothing beside itself.
func (d *document) html() (string, error) {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Comparison</title>\n<style>\n" + htmlStyle + "\n</style>\n</head>\n<body>\n<h1>Comparison</h1>\n")
	for i, s := range d.sections {
		if i > 0 {
			fmt.Fprintf(&b, "<h2>%s</h2>\n", html.EscapeString(s.title))
		}
		if s.table != nil {
			s.table.html(&b, s.id)
		}
		for _, p := range s.text {
			b.WriteString("<p>" + html.EscapeString(p) + "</p>\n")
		}
	}
	if len(d.plots) > 0 {
		b.WriteString("<h2>Plots</h2>\n")
		for _, p := range d.plots {
			png, err := os.ReadFile(p)
			if err != nil {
				return "", fmt.Errorf("compare: inline plot: %w", err)
			}
			name := strings.TrimSuffix(filepath.Base(p), ".png")
			fmt.Fprintf(&b, "<figure><img alt=%q src=\"data:image/png;base64,%s\"><figcaption>%s</figcaption></figure>\n",
				name, base64.StdEncoding.EncodeToString(png), html.EscapeString(name))
		}
	}
	b.WriteString("</body>\n</html>\n")
	return b.String(), nil
}
