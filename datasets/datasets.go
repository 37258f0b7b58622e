// Package datasets reads training data from local files into records and shapes them into the formats the TRL-style trainers use.
package datasets

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Record is one example as JSON-like values: string, float64, bool, []any,
// map[string]any or nil. Integers from typed sources (Parquet, Arrow) are
// converted to float64 as well, so every reader yields the same value types.
type Record map[string]any

// Source says where a record came from, for error messages.
type Source struct {
	// File is the path of the file as it was opened.
	File string
	// Line is the 1-based line of the record for text formats (JSONL, JSON:
	// the line where the object starts, CSV/TSV, text), or the 1-based row
	// number for Parquet and Arrow.
	Line int
}

// String formats the source as "file:line".
func (s Source) String() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// Feature describes a column as declared by a Hugging Face dataset_info.json
// (or an Arrow schema's "huggingface" metadata).
type Feature struct {
	// Type is the feature's "_type" ("Value", "ClassLabel", "Sequence",
	// "List", "LargeList", "Image", ...), "dict" for a nested mapping of
	// features, or "list" for the old `[feature]` list notation.
	Type string
	// Dtype is the "dtype" of a Value feature ("string", "int64", ...).
	Dtype string
	// Names are the class names of a ClassLabel, index = label id.
	Names []string
	// Fields are the sub-features of a "dict" feature.
	Fields map[string]Feature
	// Elem is the element feature of a list-like feature.
	Elem *Feature
}

// Dataset is one split: records in file order plus what the loader learnt
// about them.
type Dataset struct {
	// Name is the split name ("train", "test", "validation", ...).
	Name string
	// Records are the examples; Sources[i] is where Records[i] came from.
	Records []Record
	Sources []Source
	// Columns are the column names in source order (union over records for
	// schemaless formats, in order of first appearance), after renaming.
	Columns []string
	// Features are the declared column types, if the source declares them
	// (save_to_disk folders and HF Arrow files); nil otherwise.
	Features map[string]Feature
	// Skipped counts records dropped while loading because they could not be
	// parsed (only with LoadOptions.SkipBadRecords); SkipReasons holds the
	// first MaxSkipReasons of their error messages.
	Skipped     int
	SkipReasons []string
	// SkipBadRecords makes the typed views (Preferences, PromptCompletions,
	// ...) skip invalid records instead of failing; Load copies it from
	// LoadOptions.
	SkipBadRecords bool
	// Checked reports what the last typed view call dropped or noticed.
	Checked ViewReport
}

// MaxSkipReasons is how many skip reasons a Dataset or ViewReport keeps.
const MaxSkipReasons = 10

// ViewReport is filled by each typed view call (Preferences,
// PromptCompletions, Texts, Conversations, Classifications, ...).
type ViewReport struct {
	// View is the name of the view method that filled the report.
	View string
	// Kept and Skipped count records returned and dropped as invalid (a
	// record is only dropped when SkipBadRecords is set).
	Kept, Skipped int
	// Reasons are the first MaxSkipReasons error messages of dropped records.
	Reasons []string
	// IdenticalPairs counts preference pairs whose chosen equals rejected;
	// they are kept (TRL keeps them too) but usually signal a data problem.
	IdenticalPairs int
}

// Len returns the number of records.
func (d *Dataset) Len() int { return len(d.Records) }

// ClassNames returns the ClassLabel names declared for column, or nil.
func (d *Dataset) ClassNames(column string) []string {
	f, ok := d.Features[column]
	if !ok || f.Type != "ClassLabel" {
		return nil
	}
	return f.Names
}

// Source returns where record i came from.
func (d *Dataset) Source(i int) Source {
	if i < len(d.Sources) {
		return d.Sources[i]
	}
	return Source{}
}

// DatasetDict holds named splits, like a Hugging Face DatasetDict.
type DatasetDict struct {
	Splits map[string]*Dataset
}

// Names returns the split names, sorted with train first, then validation,
// then test, then the rest alphabetically.
func (dd *DatasetDict) Names() []string {
	names := slices.Collect(maps.Keys(dd.Splits))
	rank := map[string]int{"train": 0, "validation": 1, "test": 2}
	sort.Slice(names, func(i, j int) bool {
		ri, ok := rank[names[i]]
		if !ok {
			ri = 3
		}
		rj, ok := rank[names[j]]
		if !ok {
			rj = 3
		}
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	return names
}

// Split returns the named split or an error listing the available ones.
func (dd *DatasetDict) Split(name string) (*Dataset, error) {
	if d, ok := dd.Splits[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("datasets: no split %q (have %s)", name, strings.Join(dd.Names(), ", "))
}

// LoadOptions controls Load. The zero value loads every split of a file or
// folder with the format taken from the file extensions.
type LoadOptions struct {
	// Split keeps only this split. For a single file, which holds one split,
	// it names that split; the default is "train".
	Split string
	// Format is the file format, overriding the extension: "jsonl", "json",
	// "csv", "tsv", "text" (or "txt"), "parquet" or "arrow". Needed for
	// extensions Load does not know, e.g. rt-polarity's ".pos"/".neg" files
	// with Format "text". Default: from the extension.
	Format string
	// Columns renames columns, source name -> target name, e.g.
	// {"question": "prompt", "response_j": "chosen", "response_k": "rejected"}.
	// A source column that no record of a split has is an error.
	Columns map[string]string
	// SkipBadRecords drops records that cannot be parsed (and, in the typed
	// views, records that fail validation) and counts them in
	// Dataset.Skipped / Dataset.Checked instead of failing. Default false:
	// the first bad record is an error naming file, line and field.
	SkipBadRecords bool
	// NoHeader says CSV/TSV files have no header row; columns are named by
	// ColumnNames or "column0", "column1", ... Default false.
	NoHeader bool
	// ColumnNames names CSV/TSV columns. With NoHeader the file has no header
	// row; without it the header row is read and replaced by these names
	// (the counts must match). Default: the header row.
	ColumnNames []string
	// Delimiter is the CSV field separator. Default ',' for CSV; TSV always
	// uses '\t'.
	Delimiter rune
	// SampleBy says how text files become records: "line" (default: one
	// {"text": line} per non-blank line), "paragraph" (documents separated by
	// blank lines, lines joined by "\n") or "document" (the whole file).
	SampleBy string
	// Limit keeps at most this many records per split (0: all).
	Limit int
}

// Load reads path into a DatasetDict.
//
// A file is read with the format of its extension (.jsonl, .json, .csv,
// .tsv, .txt, .parquet, .arrow; see LoadOptions.Format) into the split
// "train" (or LoadOptions.Split).
//
// A directory is either a Hugging Face save_to_disk folder (a
// dataset_dict.json with one subfolder per split, or a single split's
// state.json), or a folder of data files whose names give their split the
// way Hugging Face does: a name containing "train" goes to "train";
// "validation", "valid", "val" or "dev" to "validation"; "test", "testing",
// "eval" or "evaluation" to "test" (as words separated by "-", "_", ".",
// " " or digits). Files of one split are concatenated in name order. If no
// name matches, all files form "train". Only the most common data
// extension of the folder is read (with LoadOptions.Format, every file
// is read in that format); README*, LICENSE*, PROVENANCE* and .md, .htm,
// .html, .py files are never data.
func Load(path string, opts LoadOptions) (*DatasetDict, error) {
	st, err := os.Stat(path)
	if err != nil {
		if r, config, ok := hubDatasetID(path); ok {
			dd, herr := loadHub(r, config, opts)
			if herr != nil {
				return nil, fmt.Errorf("datasets: %s: no such local file or folder, and as a Hub dataset id: %w", path, herr)
			}
			return finishLoad(dd, opts)
		}
		return nil, fmt.Errorf("datasets: %w", err)
	}
	var dd *DatasetDict
	if st.IsDir() {
		dd, err = loadDir(path, opts)
	} else {
		split := opts.Split
		if split == "" {
			split = "train"
		}
		var bs map[string]*builder
		bs, err = readFile(path, opts)
		if err == nil {
			dd = &DatasetDict{Splits: map[string]*Dataset{}}
			for name, b := range bs {
				if name == "" {
					name = split
				}
				d := b.dataset()
				d.Name = name
				dd.Splits[name] = d
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return finishLoad(dd, opts)
}

// finishLoad keeps opts.Split and renames the columns.
func finishLoad(dd *DatasetDict, opts LoadOptions) (*DatasetDict, error) {
	if opts.Split != "" {
		d, err := dd.Split(opts.Split)
		if err != nil {
			return nil, err
		}
		dd = &DatasetDict{Splits: map[string]*Dataset{opts.Split: d}}
	}
	for _, d := range dd.Splits {
		d.SkipBadRecords = opts.SkipBadRecords
		if err := d.RenameColumns(opts.Columns); err != nil {
			return nil, err
		}
	}
	return dd, nil
}

// LoadSplit is Load followed by picking one split; with an empty split and
// a single-split source it returns that split.
func LoadSplit(path, split string, opts LoadOptions) (*Dataset, error) {
	opts.Split = split
	dd, err := Load(path, opts)
	if err != nil {
		return nil, err
	}
	if split == "" {
		if len(dd.Splits) != 1 {
			return nil, fmt.Errorf("datasets: %s: %d splits (%s), name one", path, len(dd.Splits), strings.Join(dd.Names(), ", "))
		}
		return dd.Splits[dd.Names()[0]], nil
	}
	return dd.Split(split)
}

// RenameColumns renames columns (source -> target) in every record, in
// Columns and in Features. A source column that no record has is an error
// (an empty dataset accepts any renaming).
func (d *Dataset) RenameColumns(rename map[string]string) error {
	if len(rename) == 0 || len(d.Records) == 0 {
		return nil
	}
	for _, src := range slices.Sorted(maps.Keys(rename)) {
		if !slices.Contains(d.Columns, src) {
			file := ""
			if len(d.Sources) > 0 {
				file = d.Sources[0].File + ": "
			}
			return fmt.Errorf("datasets: %scolumn %q not found (have %s)", file, src, strings.Join(d.Columns, ", "))
		}
		if dst := rename[src]; dst != src && slices.Contains(d.Columns, dst) {
			if _, moved := rename[dst]; !moved {
				file := ""
				if len(d.Sources) > 0 {
					file = d.Sources[0].File + ": "
				}
				return fmt.Errorf("datasets: %scolumns %s=%s: the data already has a column %q, which the rename would overwrite; rename or drop that one too (e.g. %s=old_%s)", file, src, dst, dst, dst, dst)
			}
		}
	}
	for _, r := range d.Records {
		moved := map[string]any{}
		for src, dst := range rename {
			if v, ok := r[src]; ok {
				moved[dst] = v
				delete(r, src)
			}
		}
		maps.Copy(r, moved)
	}
	var cols []string
	seen := map[string]bool{}
	for _, c := range d.Columns {
		if t, ok := rename[c]; ok {
			c = t
		}
		if !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	d.Columns = cols
	if d.Features != nil {
		moved := map[string]Feature{}
		for src, dst := range rename {
			if f, ok := d.Features[src]; ok {
				moved[dst] = f
				delete(d.Features, src)
			}
		}
		maps.Copy(d.Features, moved)
	}
	return nil
}

// dataExts maps file extensions to formats.
var dataExts = map[string]string{
	".jsonl":   "jsonl",
	".ndjson":  "jsonl",
	".json":    "json",
	".csv":     "csv",
	".tsv":     "tsv",
	".txt":     "text",
	".parquet": "parquet",
	".arrow":   "arrow",
}

func formatOf(path string, opts LoadOptions) (string, error) {
	if opts.Format != "" {
		switch f := strings.ToLower(opts.Format); f {
		case "jsonl", "json", "csv", "tsv", "text", "parquet", "arrow":
			return f, nil
		case "txt":
			return "text", nil
		case "ndjson":
			return "jsonl", nil
		default:
			return "", fmt.Errorf("datasets: dataset_format (--dataset-format) %q: want jsonl, json, csv, tsv, text, parquet or arrow", opts.Format)
		}
	}
	ext := strings.ToLower(filepath.Ext(path))
	if f, ok := dataExts[ext]; ok {
		return f, nil
	}
	return "", fmt.Errorf("datasets: %s: unknown extension %q: name the file format with dataset_format (--dataset-format jsonl, json, csv, tsv, text, parquet or arrow)", path, ext)
}

// readFile reads one file into builders keyed by split; the key "" is the
// file's own (unnamed) split. Only JSON files with named arrays
// ({"train": [...], "test": [...]}) hold named splits.
func readFile(path string, opts LoadOptions) (map[string]*builder, error) {
	format, err := formatOf(path, opts)
	if err != nil {
		return nil, err
	}
	if format == "json" {
		return readJSON(path, opts)
	}
	b := newBuilder(opts)
	switch format {
	case "jsonl":
		err = readJSONL(path, b)
	case "csv":
		err = readCSV(path, opts, false, b)
	case "tsv":
		err = readCSV(path, opts, true, b)
	case "text":
		err = readText(path, opts, b)
	case "parquet":
		err = readParquet(path, b)
	case "arrow":
		err = readArrowFile(path, b)
	}
	if err != nil {
		return nil, err
	}
	return map[string]*builder{"": b}, nil
}

// RecordError is a record that cannot be read or fails validation.
type RecordError struct {
	Src Source
	// Field is the offending field, empty for whole-record problems.
	Field string
	Msg   string
}

func (e *RecordError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("datasets: %s: %s", e.Src, e.Msg)
	}
	return fmt.Sprintf("datasets: %s: field %q: %s", e.Src, e.Field, e.Msg)
}

func recErr(src Source, field, format string, args ...any) *RecordError {
	return &RecordError{Src: src, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// errLimit stops a reader once the builder holds Limit records.
var errLimit = errors.New("datasets: limit reached")

// builder accumulates records of one split.
type builder struct {
	opts     LoadOptions
	records  []Record
	sources  []Source
	columns  []string
	colSet   map[string]bool
	features map[string]Feature
	skipped  int
	reasons  []string
}

func newBuilder(opts LoadOptions) *builder {
	return &builder{opts: opts, colSet: map[string]bool{}}
}

// add appends a record; it returns errLimit once Limit is reached.
func (b *builder) add(r Record, src Source, cols []string) error {
	if b.opts.Limit > 0 && len(b.records) >= b.opts.Limit {
		return errLimit
	}
	b.records = append(b.records, r)
	b.sources = append(b.sources, src)
	if cols == nil { // nil: unknown order; []string{}: nothing new
		cols = slices.Sorted(maps.Keys(r))
	}
	for _, c := range cols {
		if !b.colSet[c] {
			b.colSet[c] = true
			b.columns = append(b.columns, c)
		}
	}
	if b.opts.Limit > 0 && len(b.records) >= b.opts.Limit {
		return errLimit
	}
	return nil
}

// bad handles a bad record: an error unless SkipBadRecords.
func (b *builder) bad(err error) error {
	if !b.opts.SkipBadRecords {
		return err
	}
	b.skipped++
	if len(b.reasons) < MaxSkipReasons {
		b.reasons = append(b.reasons, err.Error())
	}
	return nil
}

func (b *builder) dataset() *Dataset {
	return &Dataset{
		Records:     b.records,
		Sources:     b.sources,
		Columns:     b.columns,
		Features:    b.features,
		Skipped:     b.skipped,
		SkipReasons: b.reasons,
	}
}

// merge appends another builder's results (files of one split).
func (b *builder) merge(o *builder) {
	for i, r := range o.records {
		if b.opts.Limit > 0 && len(b.records) >= b.opts.Limit {
			break
		}
		b.records = append(b.records, r)
		b.sources = append(b.sources, o.sources[i])
	}
	for _, c := range o.columns {
		if !b.colSet[c] {
			b.colSet[c] = true
			b.columns = append(b.columns, c)
		}
	}
	if b.features == nil && o.features != nil {
		b.features = o.features
	}
	b.skipped += o.skipped
	for _, r := range o.reasons {
		if len(b.reasons) < MaxSkipReasons {
			b.reasons = append(b.reasons, r)
		}
	}
}
