package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// readArrowFile reads an Arrow IPC file: the stream format (what Hugging
// Face save_to_disk and the datasets cache write) or the random-access file
// format (magic "ARROW1"). Features are taken from the schema's
// "huggingface" metadata when present.
func readArrowFile(path string, b *builder) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	// arrow-go's readers and even its validators index buffers without
	// bounds checks on some corrupt inputs (checkArrowIPC and
	// ValidateRecordFull catch most first); report the rest as errors,
	// as readParquet does for parquet-go.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("datasets: %s: arrow: corrupt file (%v)", path, p)
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	if err := checkArrowIPC(f, st.Size()); err != nil {
		return fmt.Errorf("datasets: %s: arrow: %w", path, err)
	}
	mem := memory.NewGoAllocator()
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	row := 0
	if n == 6 && string(magic) == "ARROW1" {
		fr, err := ipc.NewFileReader(f, ipc.WithAllocator(mem))
		if err != nil {
			return fmt.Errorf("datasets: %s: arrow: %w", path, err)
		}
		defer fr.Close()
		setArrowFeatures(fr.Schema(), b)
		for i := 0; i < fr.NumRecords(); i++ {
			rec, err := fr.RecordBatch(i)
			if err != nil {
				return fmt.Errorf("datasets: %s: arrow batch %d: %w", path, i, err)
			}
			done, err := addArrowBatch(rec, path, &row, b)
			if err != nil || done {
				return err
			}
		}
		return nil
	}
	sr, err := ipc.NewReader(bufio.NewReaderSize(f, 1<<20), ipc.WithAllocator(mem))
	if err != nil {
		return fmt.Errorf("datasets: %s: arrow: %w", path, err)
	}
	defer sr.Release()
	setArrowFeatures(sr.Schema(), b)
	for sr.Next() {
		done, err := addArrowBatch(sr.RecordBatch(), path, &row, b)
		if err != nil || done {
			return err
		}
	}
	if err := sr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("datasets: %s: arrow: %w", path, err)
	}
	return nil
}

// addArrowBatch converts every row of rec; done reports the Limit reached.
func addArrowBatch(rec arrow.RecordBatch, path string, row *int, b *builder) (done bool, err error) {
	// A corrupt file can hold offsets and lengths that point outside its
	// buffers: check every array before reading a value from it.
	if err := array.ValidateRecordFull(rec); err != nil {
		return true, fmt.Errorf("datasets: %s: arrow: corrupt record batch after row %d: %w", path, *row, err)
	}
	sch := rec.Schema()
	cols := make([]string, sch.NumFields())
	for i, f := range sch.Fields() {
		cols[i] = f.Name
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		*row++
		r := make(Record, len(cols))
		for c, name := range cols {
			r[name] = arrowValue(rec.Column(c), i)
		}
		if err := b.add(r, Source{File: path, Line: *row}, cols); err != nil {
			if errors.Is(err, errLimit) {
				return true, nil
			}
			return true, err
		}
	}
	return false, nil
}

// arrowValue converts element i of arr to a JSON-like value.
func arrowValue(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.String:
		return strings.Clone(a.Value(i))
	case *array.LargeString:
		return strings.Clone(a.Value(i))
	case *array.StringView:
		return strings.Clone(a.Value(i))
	case *array.Binary:
		return string(a.Value(i))
	case *array.LargeBinary:
		return string(a.Value(i))
	case *array.BinaryView:
		return string(a.Value(i))
	case *array.FixedSizeBinary:
		return string(a.Value(i))
	case *array.Boolean:
		return a.Value(i)
	case *array.Int8:
		return float64(a.Value(i))
	case *array.Int16:
		return float64(a.Value(i))
	case *array.Int32:
		return float64(a.Value(i))
	case *array.Int64:
		return float64(a.Value(i))
	case *array.Uint8:
		return float64(a.Value(i))
	case *array.Uint16:
		return float64(a.Value(i))
	case *array.Uint32:
		return float64(a.Value(i))
	case *array.Uint64:
		return float64(a.Value(i))
	case *array.Float16:
		return float64(a.Value(i).Float32())
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	case *array.Null:
		return nil
	case *array.Map:
		keys, items := a.Keys(), a.Items()
		start, end := a.ValueOffsets(i)
		m := make(map[string]any, end-start)
		for j := start; j < end; j++ {
			m[fmt.Sprint(arrowValue(keys, int(j)))] = arrowValue(items, int(j))
		}
		return m
	case array.ListLike:
		vals := a.ListValues()
		start, end := a.ValueOffsets(i)
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			out = append(out, arrowValue(vals, int(j)))
		}
		return out
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := make(map[string]any, a.NumField())
		for f := 0; f < a.NumField(); f++ {
			m[st.Field(f).Name] = arrowValue(a.Field(f), i)
		}
		return m
	case *array.Dictionary:
		j := a.GetValueIndex(i)
		if j < 0 || j >= a.Dictionary().Len() {
			return nil // ValidateRecordFull does not check dictionary indices
		}
		return arrowValue(a.Dictionary(), j)
	}
	s := arr.ValueStr(i)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		switch arr.DataType().ID() {
		case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
			return f
		}
	}
	return s
}

// setArrowFeatures reads features from the "huggingface" schema metadata
// ({"info": {"features": {...}}}).
func setArrowFeatures(sch *arrow.Schema, b *builder) {
	md := sch.Metadata()
	raw, ok := md.GetValue("huggingface")
	if !ok {
		return
	}
	var meta struct {
		Info struct {
			Features json.RawMessage `json:"features"`
		} `json:"info"`
	}
	if json.Unmarshal([]byte(raw), &meta) != nil || len(meta.Info.Features) == 0 {
		return
	}
	if fs, err := parseFeatures(meta.Info.Features); err == nil {
		b.features = fs
	}
}

// parseFeatures parses a dataset_info.json "features" object.
func parseFeatures(raw json.RawMessage) (map[string]Feature, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	out := make(map[string]Feature, len(m))
	for k, v := range m {
		f, err := parseFeature(v)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", k, err)
		}
		out[k] = f
	}
	return out, nil
}

func parseFeature(raw json.RawMessage) (Feature, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' { // old list notation: [feature]
		var l []json.RawMessage
		if err := json.Unmarshal(raw, &l); err != nil {
			return Feature{}, err
		}
		f := Feature{Type: "list"}
		if len(l) > 0 {
			e, err := parseFeature(l[0])
			if err != nil {
				return Feature{}, err
			}
			f.Elem = &e
		}
		return f, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Feature{}, err
	}
	typRaw, ok := m["_type"]
	if !ok { // nested dict of features
		fs, err := parseFeatures(raw)
		if err != nil {
			return Feature{}, err
		}
		return Feature{Type: "dict", Fields: fs}, nil
	}
	var f Feature
	if err := json.Unmarshal(typRaw, &f.Type); err != nil {
		return Feature{}, err
	}
	if d, ok := m["dtype"]; ok {
		json.Unmarshal(d, &f.Dtype)
	}
	if f.Type == "ClassLabel" {
		if n, ok := m["names"]; ok {
			if err := json.Unmarshal(n, &f.Names); err != nil {
				return Feature{}, fmt.Errorf("ClassLabel names: %w", err)
			}
		}
		if len(f.Names) == 0 {
			var num int
			if n, ok := m["num_classes"]; ok && json.Unmarshal(n, &num) == nil {
				for i := range num {
					f.Names = append(f.Names, strconv.Itoa(i))
				}
			}
		}
	}
	if e, ok := m["feature"]; ok {
		ef, err := parseFeature(e)
		if err != nil {
			return Feature{}, err
		}
		f.Elem = &ef
	}
	return f, nil
}

// loadDir loads a save_to_disk folder or a folder of data files.
func loadDir(dir string, opts LoadOptions) (*DatasetDict, error) {
	if raw, err := os.ReadFile(filepath.Join(dir, "dataset_dict.json")); err == nil {
		var meta struct {
			Splits []string `json:"splits"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("datasets: %s: %w", filepath.Join(dir, "dataset_dict.json"), err)
		}
		dd := &DatasetDict{Splits: map[string]*Dataset{}}
		for _, s := range meta.Splits {
			if opts.Split != "" && s != opts.Split {
				continue
			}
			d, err := loadSavedSplit(filepath.Join(dir, s), opts)
			if err != nil {
				return nil, err
			}
			d.Name = s
			dd.Splits[s] = d
		}
		return dd, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		d, err := loadSavedSplit(dir, opts)
		if err != nil {
			return nil, err
		}
		if d.Name == "" {
			d.Name = "train"
			if opts.Split != "" {
				d.Name = opts.Split
			}
		}
		return &DatasetDict{Splits: map[string]*Dataset{d.Name: d}}, nil
	}
	return loadDataFiles(dir, opts)
}

// loadSavedSplit reads one split folder written by save_to_disk: state.json
// lists the Arrow stream files, dataset_info.json declares the features.
func loadSavedSplit(dir string, opts LoadOptions) (*Dataset, error) {
	statePath := filepath.Join(dir, "state.json")
	raw, err := os.ReadFile(statePath)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	var state struct {
		DataFiles []struct {
			Filename string `json:"filename"`
		} `json:"_data_files"`
		Split *string `json:"_split"`
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("datasets: %s: %w", statePath, err)
	}
	if len(state.DataFiles) == 0 {
		return nil, fmt.Errorf("datasets: %s: no _data_files", statePath)
	}
	b := newBuilder(opts)
	for _, df := range state.DataFiles {
		fb := newBuilder(opts)
		if opts.Limit > 0 {
			fb.opts.Limit = opts.Limit - len(b.records)
		}
		if err := readArrowFile(filepath.Join(dir, df.Filename), fb); err != nil {
			return nil, err
		}
		b.merge(fb)
		if opts.Limit > 0 && len(b.records) >= opts.Limit {
			break
		}
	}
	infoPath := filepath.Join(dir, "dataset_info.json")
	if raw, err := os.ReadFile(infoPath); err == nil {
		var info struct {
			Features json.RawMessage `json:"features"`
		}
		if err := json.Unmarshal(raw, &info); err != nil {
			return nil, fmt.Errorf("datasets: %s: %w", infoPath, err)
		}
		if len(info.Features) > 0 && string(info.Features) != "null" {
			fs, err := parseFeatures(info.Features)
			if err != nil {
				return nil, fmt.Errorf("datasets: %s: %w", infoPath, err)
			}
			b.features = fs
		}
	}
	d := b.dataset()
	if state.Split != nil {
		d.Name = *state.Split
	}
	return d, nil
}

// loadDataFiles loads a folder of data files named by split.
func loadDataFiles(dir string, opts LoadOptions) (*DatasetDict, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	byFormat := map[string][]string{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || notData(e.Name()) {
			continue
		}
		var format string
		if opts.Format != "" {
			format, _ = formatOf(e.Name(), opts)
		} else {
			format = dataExts[strings.ToLower(filepath.Ext(e.Name()))]
		}
		if format != "" {
			byFormat[format] = append(byFormat[format], e.Name())
		}
	}
	if len(byFormat) == 0 {
		return nil, fmt.Errorf("datasets: %s: no data files (.jsonl, .json, .csv, .tsv, .txt, .parquet, .arrow)", dir)
	}
	// The most common format wins; ties go to the more structured format.
	priority := []string{"parquet", "arrow", "jsonl", "json", "csv", "tsv", "text"}
	best := ""
	for _, f := range priority {
		if len(byFormat[f]) > len(byFormat[best]) {
			best = f
		}
	}
	files := byFormat[best]
	slices.Sort(files)
	fileSplit := map[string]string{}
	named := false
	for _, name := range files {
		s := splitOfName(strings.TrimSuffix(name, filepath.Ext(name)))
		fileSplit[name] = s
		if s != "" {
			named = true
		}
	}
	// Files of another format named for a split the chosen files hold too
	// (train.jsonl next to train.csv): refuse rather than read one silently.
	bySplit := map[string]string{}
	for _, name := range files {
		if s := fileSplit[name]; s != "" && bySplit[s] == "" {
			bySplit[s] = name
		}
	}
	for _, f := range priority {
		if f == best || opts.Format != "" {
			continue
		}
		for _, name := range byFormat[f] {
			if s := splitOfName(strings.TrimSuffix(name, filepath.Ext(name))); s != "" && bySplit[s] != "" {
				return nil, fmt.Errorf("datasets: %s: %s and %s both hold split %s; remove or move one, or choose with --dataset-format", dir, bySplit[s], name, s)
			}
		}
	}
	fopts := opts
	fopts.Format = best
	splits := map[string]*builder{}
	for _, name := range files {
		split := "train"
		if named {
			split = fileSplit[name]
			if split == "" {
				continue
			}
		}
		if opts.Split != "" && split != opts.Split && best != "json" {
			continue
		}
		bs, err := readFile(filepath.Join(dir, name), fopts)
		if err != nil {
			return nil, err
		}
		for s, fb := range bs {
			if s == "" {
				s = split
			}
			if prev, ok := splits[s]; ok {
				prev.merge(fb)
			} else {
				splits[s] = fb
			}
		}
	}
	dd := &DatasetDict{Splits: map[string]*Dataset{}}
	for _, s := range slices.Sorted(maps.Keys(splits)) {
		d := splits[s].dataset()
		d.Name = s
		dd.Splits[s] = d
	}
	return dd, nil
}

// notData reports files that sit beside data but are never data.
func notData(name string) bool {
	lower := strings.ToLower(name)
	for _, p := range []string{"readme", "license", "licence", "provenance"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	switch filepath.Ext(lower) {
	case ".md", ".htm", ".html", ".py":
		return true
	}
	return false
}
