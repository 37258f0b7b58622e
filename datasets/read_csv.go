package datasets

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readCSV reads a CSV file (encoding/csv with LazyQuotes, so a stray quote
// inside a field is kept) or a TSV file (split on tabs with no quote
// handling at all: GLUE files such as MRPC hold unbalanced quotes). All
// values are strings. A leading UTF-8 byte order mark is dropped.
func readCSV(path string, opts LoadOptions, tsv bool, b *builder) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	if bom, _ := br.Peek(3); bytes.Equal(bom, utf8BOM) {
		br.Discard(3)
	}
	var next func() (fields []string, line int, err error)
	if tsv {
		next = tsvRows(br)
	} else {
		cr := csv.NewReader(br)
		cr.LazyQuotes = true
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = false
		if opts.Delimiter != 0 {
			cr.Comma = opts.Delimiter
		}
		next = func() ([]string, int, error) {
			rec, err := cr.Read()
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return nil, pe.StartLine, recErr(Source{File: path, Line: pe.StartLine}, "", "invalid CSV: %v", pe.Err)
				}
				return nil, 0, err
			}
			line, _ := cr.FieldPos(0)
			return rec, line, nil
		}
	}

	var header []string
	if opts.NoHeader {
		header = opts.ColumnNames
	} else {
		h, line, err := next()
		if err == io.EOF {
			return fmt.Errorf("datasets: %s: empty file (no header row)", path)
		}
		if err != nil {
			return wrapReadErr(path, err)
		}
		header = h
		if len(opts.ColumnNames) > 0 {
			if len(opts.ColumnNames) != len(h) {
				return recErr(Source{File: path, Line: line}, "", "header has %d columns, ColumnNames %d", len(h), len(opts.ColumnNames))
			}
			header = opts.ColumnNames
		}
	}
	if err := checkHeader(path, header); err != nil {
		return err
	}
	for {
		fields, line, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				if err := b.bad(re); err != nil {
					return err
				}
				continue
			}
			return wrapReadErr(path, err)
		}
		src := Source{File: path, Line: line}
		if header == nil { // NoHeader without names: column0, column1, ...
			for i := range fields {
				header = append(header, fmt.Sprintf("column%d", i))
			}
		}
		if len(fields) != len(header) {
			if err := b.bad(recErr(src, "", "%d fields, want %d (%s)", len(fields), len(header), strings.Join(header, ", "))); err != nil {
				return err
			}
			continue
		}
		r := make(Record, len(header))
		for i, h := range header {
			r[h] = fields[i]
		}
		if err := b.add(r, src, header); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
	}
}

func wrapReadErr(path string, err error) error {
	var re *RecordError
	if errors.As(err, &re) {
		return err
	}
	return fmt.Errorf("datasets: %s: %w", path, err)
}

func checkHeader(path string, header []string) error {
	seen := map[string]bool{}
	for _, h := range header {
		if seen[h] {
			return fmt.Errorf("datasets: %s: duplicate column %q", path, h)
		}
		seen[h] = true
	}
	return nil
}

// tsvRows splits lines on tabs; blank lines are skipped, "\r\n" endings
// accepted.
func tsvRows(br *bufio.Reader) func() ([]string, int, error) {
	line := 0
	return func() ([]string, int, error) {
		for {
			raw, err := br.ReadString('\n')
			if raw == "" && err != nil {
				return nil, line, err
			}
			line++
			raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
			if strings.TrimSpace(raw) == "" {
				if err != nil {
					return nil, line, err
				}
				continue
			}
			return strings.Split(raw, "\t"), line, nil
		}
	}
}
