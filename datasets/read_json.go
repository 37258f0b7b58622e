package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// readJSONL reads one JSON object per line; blank lines are ignored.
func readJSONL(path string, b *builder) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	return readJSONLFrom(f, path, 1, b)
}

func readJSONLFrom(r io.Reader, path string, firstLine int, b *builder) error {
	br := bufio.NewReaderSize(r, 1<<20)
	line := firstLine - 1
	for {
		raw, rerr := br.ReadBytes('\n')
		if len(raw) > 0 {
			line++
			if line == 1 {
				raw = bytes.TrimPrefix(raw, utf8BOM)
			}
			if err := addJSONLine(raw, Source{File: path, Line: line}, b); err != nil {
				if errors.Is(err, errLimit) {
					return nil
				}
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("datasets: %s: %w", path, rerr)
		}
	}
}

func addJSONLine(raw []byte, src Source, b *builder) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if i := invalidUTF8(raw); i >= 0 {
		// json.Unmarshal would replace it with U+FFFD without a word
		return b.bad(recErr(src, "", "invalid UTF-8 at byte %d of the line", i+1))
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return b.bad(recErr(src, "", "invalid JSON: %v", err))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return b.bad(recErr(src, "", "line is a JSON %s, not an object", jsonKind(v)))
	}
	return b.add(Record(m), src, b.newKeysOrder(raw, m))
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// invalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// readJSON reads a JSON file holding an array of objects, or an object
// whose array values are splits ({"train": [...], "test": [...]}); an
// object with a "data" array holds just that array. A file of several
// concatenated objects is read as JSON Lines. The key "" of the result is
// the file's unnamed split.
func readJSON(path string, opts LoadOptions) (map[string]*builder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	lines := newLineIndex(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	first := firstNonSpace(data, 0)
	if first < 0 {
		return nil, fmt.Errorf("datasets: %s: empty file", path)
	}
	// Several top-level values: JSON Lines under a .json name.
	if data[first] == '{' && multipleValues(data) {
		b := newBuilder(opts)
		if err := readJSONLFrom(bytes.NewReader(data), path, 1, b); err != nil {
			return nil, err
		}
		return map[string]*builder{"": b}, nil
	}
	if i := invalidUTF8(data); i >= 0 {
		return nil, fmt.Errorf("datasets: %s:%d: invalid UTF-8 (JSON must be UTF-8; re-encode the file, e.g. with iconv)", path, lines.line(i))
	}
	out := map[string]*builder{}
	switch data[first] {
	case '[':
		b := newBuilder(opts)
		if err := decodeArray(dec, data, lines, path, b); err != nil {
			return nil, err
		}
		out[""] = b
	case '{':
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("datasets: %s:%d: invalid JSON: %v", path, lines.line(first), err)
		}
		named := map[string]*builder{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("datasets: %s:%d: invalid JSON: %v", path, lines.line(int(dec.InputOffset())), err)
			}
			key, _ := tok.(string)
			at := firstNonSpaceAfterColon(data, int(dec.InputOffset()))
			if at >= 0 && data[at] == '[' {
				b := newBuilder(opts)
				if err := decodeArray(dec, data, lines, path, b); err != nil {
					return nil, err
				}
				named[key] = b
				continue
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("datasets: %s:%d: invalid JSON: %v", path, lines.line(int(dec.InputOffset())), err)
			}
		}
		if b, ok := named["data"]; ok {
			out[""] = b
			break
		}
		if len(named) == 0 {
			return nil, fmt.Errorf("datasets: %s: JSON object holds no array of records", path)
		}
		if len(named) == 1 {
			for k, b := range named {
				if name := splitOfName(k); name != "" {
					out[name] = b
				} else {
					out[""] = b
				}
			}
			break
		}
		for k, b := range named {
			name := splitOfName(k)
			if name == "" {
				name = k
			}
			if prev, ok := out[name]; ok {
				prev.merge(b)
			} else {
				out[name] = b
			}
		}
	default:
		return nil, fmt.Errorf("datasets: %s:%d: JSON file must hold an array or an object", path, lines.line(first))
	}
	return out, nil
}

// decodeArray consumes a JSON array of objects from dec, adding each object
// with the line where it starts.
func decodeArray(dec *json.Decoder, data []byte, lines lineIndex, path string, b *builder) error {
	if _, err := dec.Token(); err != nil { // [
		return fmt.Errorf("datasets: %s:%d: invalid JSON: %v", path, lines.line(int(dec.InputOffset())), err)
	}
	full := false
	for dec.More() {
		start := firstValueStart(data, int(dec.InputOffset()))
		src := Source{File: path, Line: lines.line(start)}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			// Syntax errors are not recoverable within one document.
			return recErr(src, "", "invalid JSON: %v", err)
		}
		if full {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return recErr(src, "", "invalid JSON: %v", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			if err := b.bad(recErr(src, "", "array element is a JSON %s, not an object", jsonKind(v))); err != nil {
				return err
			}
			continue
		}
		if err := b.add(Record(m), src, b.newKeysOrder(raw, m)); err != nil {
			if !errors.Is(err, errLimit) {
				return err
			}
			full = true
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return fmt.Errorf("datasets: %s:%d: invalid JSON: %v", path, lines.line(int(dec.InputOffset())), err)
	}
	return nil
}

// multipleValues reports whether data holds more than one top-level JSON
// value.
func multipleValues(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	var skip json.RawMessage
	if err := dec.Decode(&skip); err != nil {
		// A first line that is a complete object followed by garbage is
		// still JSON Lines; let the JSONL reader report the bad line.
		nl := bytes.IndexByte(data, '\n')
		return nl >= 0 && json.Valid(bytes.TrimSpace(data[:nl]))
	}
	_, err := dec.Token()
	return err != io.EOF
}

func firstNonSpace(data []byte, from int) int {
	for i := from; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

// firstValueStart skips whitespace and a separating comma.
func firstValueStart(data []byte, from int) int {
	for i := from; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n', ',':
		default:
			return i
		}
	}
	return len(data)
}

func firstNonSpaceAfterColon(data []byte, from int) int {
	for i := from; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n', ':':
		default:
			return i
		}
	}
	return -1
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex []int

func newLineIndex(data []byte) lineIndex {
	idx := lineIndex{0}
	for i, c := range data {
		if c == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

func (l lineIndex) line(off int) int {
	return sort.Search(len(l), func(i int) bool { return l[i] > off })
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// newKeysOrder returns the keys of m in document order when m has a key the
// builder has not seen yet, else nil (add then has nothing to record).
func (b *builder) newKeysOrder(raw []byte, m map[string]any) []string {
	for k := range m {
		if !b.colSet[k] {
			return orderedKeys(raw, m)
		}
	}
	return []string{}
}

// orderedKeys returns the keys of the JSON object raw in document order.
func orderedKeys(raw []byte, m map[string]any) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		k, _ := tok.(string)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return keys
}

// splitOfName maps a file or key name to a split name the way Hugging Face
// data-file patterns do, or "" when the name names no split.
func splitOfName(name string) string {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r == ' ' || (r >= '0' && r <= '9')
	})
	found := ""
	for _, w := range words {
		var s string
		switch w {
		case "train", "training":
			s = "train"
		case "validation", "valid", "val", "dev":
			s = "validation"
		case "test", "testing", "eval", "evaluation":
			s = "test"
		}
		if s != "" {
			found = s
		}
	}
	return found
}
