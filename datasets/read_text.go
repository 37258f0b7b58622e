package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readText reads a plain text file into {"text": ...} records, per
// LoadOptions.SampleBy. Line terminators ("\n", "\r\n") are removed; the
// text is otherwise kept as it is (no trimming), and whitespace-only lines
// count as blank.
func readText(path string, opts LoadOptions, b *builder) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if bom, _ := br.Peek(3); string(bom) == string(utf8BOM) {
		br.Discard(3)
	}
	cols := []string{"text"}
	add := func(text string, line int) error {
		err := b.add(Record{"text": text}, Source{File: path, Line: line}, cols)
		if errors.Is(err, errLimit) {
			return io.EOF
		}
		return err
	}
	switch opts.SampleBy {
	case "", "line":
		err = eachLine(br, func(s string, line int) error {
			if strings.TrimSpace(s) == "" {
				return nil
			}
			return add(s, line)
		})
	case "paragraph":
		var para []string
		start := 0
		flush := func() error {
			if len(para) == 0 {
				return nil
			}
			text := strings.Join(para, "\n")
			para = para[:0]
			return add(text, start)
		}
		err = eachLine(br, func(s string, line int) error {
			if strings.TrimSpace(s) == "" {
				return flush()
			}
			if len(para) == 0 {
				start = line
			}
			para = append(para, s)
			return nil
		})
		if err == nil {
			err = flush()
		}
	case "document":
		var all []byte
		all, err = io.ReadAll(br)
		if err == nil && strings.TrimSpace(string(all)) != "" {
			err = add(string(all), 1)
		}
	default:
		return fmt.Errorf("datasets: SampleBy %q: want line, paragraph or document", opts.SampleBy)
	}
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("datasets: %s: %w", path, err)
	}
	return nil
}

// eachLine calls fn for every line without its terminator; fn returning
// io.EOF stops early without error.
func eachLine(br *bufio.Reader, fn func(s string, line int) error) error {
	line := 0
	for {
		raw, err := br.ReadString('\n')
		if raw != "" {
			line++
			raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
			if ferr := fn(raw, line); ferr != nil {
				if ferr == io.EOF {
					return nil
				}
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
