package datasets

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sharedData returns the path of a file under the project's ../shared/data
// (../../shared/data from this package's folder), skipping the test when
// the data is not there.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skip("../shared/data not present")
	}
	return p
}

func mustLoad(t *testing.T, path string, opts LoadOptions) *DatasetDict {
	t.Helper()
	dd, err := Load(path, opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return dd
}

func mustSplit(t *testing.T, dd *DatasetDict, name string) *Dataset {
	t.Helper()
	d, err := dd.Split(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func lines(d *Dataset) []int {
	var out []int
	for _, s := range d.Sources {
		out = append(out, s.Line)
	}
	return out
}

func TestLoadJSONL(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "train.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\", \"n\": 3}\n\n  \n{\"prompt\": \"c\", \"completion\": \"d\", \"ok\": true, \"l\": [1, \"x\", null]}\r\n{\"prompt\":\"e\",\"completion\":\"f\",\"m\":{\"k\":1.5}}")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	want := []Record{
		{"prompt": "a", "completion": "b", "n": 3.0},
		{"prompt": "c", "completion": "d", "ok": true, "l": []any{1.0, "x", nil}},
		{"prompt": "e", "completion": "f", "m": map[string]any{"k": 1.5}},
	}
	if got := d.Records; !reflect.DeepEqual(got, want) {
		t.Errorf("records: got %v, want %v", got, want)
	}
	if got, want := lines(d), []int{1, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
	if got, want := d.Columns, []string{"prompt", "completion", "n", "ok", "l", "m"}; !reflect.DeepEqual(got, want) {
		t.Errorf("columns: got %v, want %v", got, want)
	}
	if d.Sources[0].File != p {
		t.Errorf("source file: got %q, want %q", d.Sources[0].File, p)
	}
}

func TestLoadJSON(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          map[string][]int // split -> record lines
	}{
		{"array.json", "[\n  {\"text\": \"a\"},\n  {\"text\": \"b\"}, {\"text\": \"c\"},\n\n  {\n \"text\": \"d\"}\n]\n", map[string][]int{"train": {2, 3, 3, 5}}},
		{"data.json", "{\"version\": 1,\n \"data\": [\n{\"text\": \"a\"}]}", map[string][]int{"train": {3}}},
		{"splits.json", "{\"train\": [{\"text\": \"a\"},\n{\"text\": \"b\"}],\n \"dev\": [{\"text\": \"c\"}],\n \"test\": []}", map[string][]int{"train": {1, 2}, "validation": {3}, "test": nil}},
		{"lines.json", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n", map[string][]int{"train": {1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dd := mustLoad(t, writeFile(t, dir, tt.name, tt.content), LoadOptions{})
			got := map[string][]int{}
			for name, d := range dd.Splits {
				got[name] = lines(d)
				for _, r := range d.Records {
					if _, ok := r["text"].(string); !ok {
						t.Errorf("%s: record %v has no text", name, r)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadCSV(t *testing.T) {
	dir := t.TempDir()
	bom := "\xEF\xBB\xBF"
	p := writeFile(t, dir, "x.csv", bom+"text,label\n\"a, b\",1\nsaid \"hi\" twice,0\n\"multi\nline\",1\n")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	want := []Record{{"text": "a, b", "label": "1"}, {"text": "said \"hi\" twice", "label": "0"}, {"text": "multi\nline", "label": "1"}}
	if !reflect.DeepEqual(d.Records, want) {
		t.Errorf("records: got %q, want %q", d.Records, want)
	}
	if got, want := lines(d), []int{2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
	if got, want := d.Columns, []string{"text", "label"}; !reflect.DeepEqual(got, want) {
		t.Errorf("columns: got %v, want %v", got, want)
	}

	// ColumnNames replace the header; NoHeader reads the first row as data.
	d = mustSplit(t, mustLoad(t, p, LoadOptions{ColumnNames: []string{"sentence", "y"}}), "train")
	if got := d.Records[0]; !reflect.DeepEqual(got, Record{"sentence": "a, b", "y": "1"}) {
		t.Errorf("renamed header: got %v", got)
	}
	q := writeFile(t, dir, "nohdr.csv", "a;1\nb;0\n")
	d = mustSplit(t, mustLoad(t, q, LoadOptions{NoHeader: true, Delimiter: ';'}), "train")
	if got, want := d.Records, []Record{{"column0": "a", "column1": "1"}, {"column0": "b", "column1": "0"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("no header: got %v, want %v", got, want)
	}
}

func TestLoadTSV(t *testing.T) {
	dir := t.TempDir()
	// Quotes are data in TSV: an opening quote must not swallow tabs.
	p := writeFile(t, dir, "x.tsv", "\xEF\xBB\xBFQuality\t#1 String\t#2 String\n1\t\"the witness\", he said\tsaid \"x\n0\ta\tb\r\n\n")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	want := []Record{
		{"Quality": "1", "#1 String": "\"the witness\", he said", "#2 String": "said \"x"},
		{"Quality": "0", "#1 String": "a", "#2 String": "b"},
	}
	if !reflect.DeepEqual(d.Records, want) {
		t.Errorf("records: got %q, want %q", d.Records, want)
	}
	q := writeFile(t, dir, "cola.tsv", "gj04\t1\t\tOur friends won't buy this.\ngj04\t0\t*\tThey drank the pub.\n")
	d = mustSplit(t, mustLoad(t, q, LoadOptions{NoHeader: true, ColumnNames: []string{"source", "label", "mark", "sentence"}}), "train")
	if got, want := d.Records[1], (Record{"source": "gj04", "label": "0", "mark": "*", "sentence": "They drank the pub."}); !reflect.DeepEqual(got, want) {
		t.Errorf("headerless: got %v, want %v", got, want)
	}
	if got, want := lines(d), []int{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines: got %v, want %v", got, want)
	}
}

func TestLoadText(t *testing.T) {
	dir := t.TempDir()
	content := "first line\r\nsecond\n\n   \npara two a\npara two b\n\n\nlast"
	tests := []struct {
		name      string
		opts      LoadOptions
		file      string
		wantTexts []string
		wantLines []int
	}{
		{"line", LoadOptions{}, "a.txt", []string{"first line", "second", "para two a", "para two b", "last"}, []int{1, 2, 5, 6, 9}},
		{"paragraph", LoadOptions{SampleBy: "paragraph"}, "a.txt", []string{"first line\nsecond", "para two a\npara two b", "last"}, []int{1, 5, 9}},
		{"document", LoadOptions{SampleBy: "document"}, "a.txt", []string{content}, []int{1}},
		{"explicit format", LoadOptions{Format: "text"}, "a.pos", []string{"first line", "second", "para two a", "para two b", "last"}, []int{1, 2, 5, 6, 9}},
		{"limit", LoadOptions{Limit: 2}, "a.txt", []string{"first line", "second"}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, tt.file, content)
			d := mustSplit(t, mustLoad(t, p, tt.opts), "train")
			got, err := d.Texts()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.wantTexts) {
				t.Errorf("texts: got %q, want %q", got, tt.wantTexts)
			}
			if gl := lines(d); !reflect.DeepEqual(gl, tt.wantLines) {
				t.Errorf("lines: got %v, want %v", gl, tt.wantLines)
			}
		})
	}
	if _, err := Load(writeFile(t, dir, "b.neg", "x\n"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "unknown extension") {
		t.Errorf("unknown extension: got %v", err)
	}
}

type pqMessage struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqRow struct {
	Prompt   string      `parquet:"prompt"`
	Label    int64       `parquet:"label"`
	Margin   *float64    `parquet:"margin,optional"`
	Ok       bool        `parquet:"ok"`
	Tags     []string    `parquet:"tags,list"`
	Messages []pqMessage `parquet:"messages,list"`
}

func TestLoadParquet(t *testing.T) {
	dir := t.TempDir()
	m := 0.5
	rows := []pqRow{
		{Prompt: "p1", Label: 1, Margin: &m, Ok: true, Tags: []string{"a", "b"}, Messages: []pqMessage{{"user", "hi"}, {"assistant", "yo"}}},
		{Prompt: "p2", Label: 0},
		{Prompt: "p3", Label: 2, Ok: true},
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "train.parquet", buf.String())
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	want := []Record{
		{"prompt": "p1", "label": 1.0, "margin": 0.5, "ok": true, "tags": []any{"a", "b"}, "messages": []any{
			map[string]any{"role": "user", "content": "hi"}, map[string]any{"role": "assistant", "content": "yo"}}},
		{"prompt": "p2", "label": 0.0, "margin": nil, "ok": false, "tags": []any{}, "messages": []any{}},
		{"prompt": "p3", "label": 2.0, "margin": nil, "ok": true, "tags": []any{}, "messages": []any{}},
	}
	if !reflect.DeepEqual(d.Records, want) {
		t.Errorf("records:\n got %#v\nwant %#v", d.Records, want)
	}
	if got, want := lines(d), []int{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("rows: got %v, want %v", got, want)
	}
	if got, want := d.Columns, []string{"prompt", "label", "margin", "ok", "tags", "messages"}; !reflect.DeepEqual(got, want) {
		t.Errorf("columns: got %v, want %v", got, want)
	}
	d = mustSplit(t, mustLoad(t, p, LoadOptions{Limit: 2}), "train")
	if d.Len() != 2 {
		t.Errorf("limit: got %d records, want 2", d.Len())
	}
}

// writeArrowStream writes a record batch as an Arrow IPC stream, the way
// Hugging Face datasets' save_to_disk does.
func writeArrowStream(t *testing.T, path string, rec arrow.RecordBatch) {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(path), filepath.Base(path), buf.String())
}

// classificationBatch builds {text: string, label: int64, meta: struct,
// words: list<string>} rows.
func classificationBatch(texts []string, labels []int64) arrow.RecordBatch {
	mem := memory.NewGoAllocator()
	metaT := arrow.StructOf(arrow.Field{Name: "id", Type: arrow.PrimitiveTypes.Int32})
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64},
		{Name: "meta", Type: metaT, Nullable: true},
		{Name: "words", Type: arrow.LargeListOf(arrow.BinaryTypes.LargeString), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for i, s := range texts {
		b.Field(0).(*array.StringBuilder).Append(s)
		b.Field(1).(*array.Int64Builder).Append(labels[i])
		sb := b.Field(2).(*array.StructBuilder)
		if i%2 == 0 {
			sb.Append(true)
			sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(i))
		} else {
			sb.AppendNull()
		}
		lb := b.Field(3).(*array.LargeListBuilder)
		lb.Append(true)
		for _, w := range strings.Fields(s) {
			lb.ValueBuilder().(*array.LargeStringBuilder).Append(w)
		}
	}
	return b.NewRecordBatch()
}

const classLabelInfo = `{"builder_name": "test", "features": {
  "text": {"dtype": "string", "_type": "Value"},
  "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
  "meta": {"id": {"dtype": "int32", "_type": "Value"}},
  "words": {"feature": {"dtype": "large_string", "_type": "Value"}, "_type": "LargeList"}
}, "splits": {}}`

// writeSavedSplit writes one save_to_disk split folder with two data files.
func writeSavedSplit(t *testing.T, dir, split string, texts []string, labels []int64) {
	t.Helper()
	half := len(texts) / 2
	writeArrowStream(t, filepath.Join(dir, "data-00000-of-00002.arrow"), classificationBatch(texts[:half], labels[:half]))
	writeArrowStream(t, filepath.Join(dir, "data-00001-of-00002.arrow"), classificationBatch(texts[half:], labels[half:]))
	writeFile(t, dir, "dataset_info.json", classLabelInfo)
	writeFile(t, dir, "state.json", `{"_data_files": [{"filename": "data-00000-of-00002.arrow"}, {"filename": "data-00001-of-00002.arrow"}],
  "_fingerprint": "abc", "_format_columns": null, "_format_kwargs": {}, "_format_type": null, "_output_all_columns": false, "_split": "`+split+`"}`)
}

func TestLoadSaveToDisk(t *testing.T) {
	root := t.TempDir()
	writeSavedSplit(t, filepath.Join(root, "train"), "train", []string{"good movie", "bad plot", "great fun", "dull"}, []int64{1, 0, 1, 0})
	writeSavedSplit(t, filepath.Join(root, "test"), "test", []string{"fine film", "awful"}, []int64{1, 0})
	writeFile(t, root, "dataset_dict.json", `{"splits": ["train", "test"]}`)

	dd := mustLoad(t, root, LoadOptions{})
	if got, want := dd.Names(), []string{"train", "test"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("splits: got %v, want %v", got, want)
	}
	train := mustSplit(t, dd, "train")
	wantRecs := []Record{
		{"text": "good movie", "label": 1.0, "meta": map[string]any{"id": 0.0}, "words": []any{"good", "movie"}},
		{"text": "bad plot", "label": 0.0, "meta": nil, "words": []any{"bad", "plot"}},
		{"text": "great fun", "label": 1.0, "meta": map[string]any{"id": 0.0}, "words": []any{"great", "fun"}},
		{"text": "dull", "label": 0.0, "meta": nil, "words": []any{"dull"}},
	}
	if !reflect.DeepEqual(train.Records, wantRecs) {
		t.Errorf("records:\n got %v\nwant %v", train.Records, wantRecs)
	}
	if got, want := lines(train), []int{1, 2, 1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("rows: got %v, want %v", got, want)
	}
	if got, want := filepath.Base(train.Sources[2].File), "data-00001-of-00002.arrow"; got != want {
		t.Errorf("source file: got %q, want %q", got, want)
	}
	if got, want := train.ClassNames("label"), []string{"neg", "pos"}; !reflect.DeepEqual(got, want) {
		t.Errorf("class names: got %v, want %v", got, want)
	}
	if got, want := train.Features["words"].Elem.Dtype, "large_string"; got != want {
		t.Errorf("words feature dtype: got %q, want %q", got, want)
	}
	if got, want := train.Features["meta"].Fields["id"].Dtype, "int32"; got != want {
		t.Errorf("meta.id feature dtype: got %q, want %q", got, want)
	}
	ex, names, err := train.Classifications()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names, []string{"neg", "pos"}; !reflect.DeepEqual(got, want) {
		t.Errorf("classification names: got %v, want %v", got, want)
	}
	var labels []int
	for _, e := range ex {
		labels = append(labels, e.Label)
	}
	if got, want := labels, []int{1, 0, 1, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("labels: got %v, want %v", got, want)
	}
	if test := mustSplit(t, dd, "test"); test.Len() != 2 {
		t.Errorf("test: got %d records, want 2", test.Len())
	}

	// One split, a split folder on its own, a single .arrow file, Limit.
	if got := mustLoad(t, root, LoadOptions{Split: "test"}).Names(); !reflect.DeepEqual(got, []string{"test"}) {
		t.Errorf("Split option: got %v", got)
	}
	single := mustLoad(t, filepath.Join(root, "test"), LoadOptions{})
	if got := single.Names(); !reflect.DeepEqual(got, []string{"test"}) {
		t.Errorf("split folder: got splits %v, want [test] (from state.json)", got)
	}
	file := mustSplit(t, mustLoad(t, filepath.Join(root, "train", "data-00001-of-00002.arrow"), LoadOptions{}), "train")
	if got, want := file.Records, wantRecs[2:]; !reflect.DeepEqual(got, want) {
		t.Errorf("single arrow file: got %v, want %v", got, want)
	}
	limited := mustSplit(t, mustLoad(t, root, LoadOptions{Limit: 3}), "train")
	if limited.Len() != 3 {
		t.Errorf("limit: got %d, want 3", limited.Len())
	}
}

func TestLoadArrowFileFormat(t *testing.T) {
	dir := t.TempDir()
	rec := classificationBatch([]string{"a b", "c"}, []int64{0, 1})
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "x.arrow", buf.String())
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	want := []Record{
		{"text": "a b", "label": 0.0, "meta": map[string]any{"id": 0.0}, "words": []any{"a", "b"}},
		{"text": "c", "label": 1.0, "meta": nil, "words": []any{"c"}},
	}
	if !reflect.DeepEqual(d.Records, want) {
		t.Errorf("got %v, want %v", d.Records, want)
	}
}

func TestLoadDataFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
	writeFile(t, dir, "dev.jsonl", "{\"text\": \"c\"}\n")
	writeFile(t, dir, "test-00.jsonl", "{\"text\": \"d\"}\n")
	writeFile(t, dir, "test-01.jsonl", "{\"text\": \"e\"}\n")
	writeFile(t, dir, "README.md", "# not data\n")
	writeFile(t, dir, "notes.txt", "ignored: jsonl is the folder's main format\n")
	dd := mustLoad(t, dir, LoadOptions{})
	got := map[string][]string{}
	for name, d := range dd.Splits {
		texts, err := d.Texts()
		if err != nil {
			t.Fatal(err)
		}
		got[name] = texts
	}
	want := map[string][]string{"train": {"a", "b"}, "validation": {"c"}, "test": {"d", "e"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// No split names: everything is train.
	other := t.TempDir()
	writeFile(t, other, "a.jsonl", "{\"text\": \"x\"}\n")
	writeFile(t, other, "b.jsonl", "{\"text\": \"y\"}\n")
	if d := mustSplit(t, mustLoad(t, other, LoadOptions{}), "train"); d.Len() != 2 {
		t.Errorf("unnamed files: got %d records, want 2", d.Len())
	}
	if _, err := Load(dir, LoadOptions{Split: "nope"}); err == nil || !strings.Contains(err.Error(), `no split "nope"`) {
		t.Errorf("missing split: got %v", err)
	}
}

func TestRenameColumns(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "se.json", `[{"question": "q?", "response_j": "good", "response_k": "bad"}]`)
	opts := LoadOptions{Columns: map[string]string{"question": "prompt", "response_j": "chosen", "response_k": "rejected"}}
	d := mustSplit(t, mustLoad(t, p, opts), "train")
	prefs, err := d.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	want := []Preference{{Prompt: "q?", Chosen: "good", Rejected: "bad", Src: Source{File: p, Line: 1}}}
	if !reflect.DeepEqual(prefs, want) {
		t.Errorf("got %+v, want %+v", prefs, want)
	}
	if got, want := d.Columns, []string{"prompt", "chosen", "rejected"}; !reflect.DeepEqual(got, want) {
		t.Errorf("columns: got %v, want %v", got, want)
	}
	// An empty split accepts the renaming.
	q := writeFile(t, dir, "splits.json", `{"train": [{"question": "q", "answer": "a"}], "test": []}`)
	dd := mustLoad(t, q, LoadOptions{Columns: map[string]string{"question": "prompt", "answer": "completion"}})
	if got := mustSplit(t, dd, "train").Records[0]; !reflect.DeepEqual(got, Record{"prompt": "q", "completion": "a"}) {
		t.Errorf("renamed: got %v", got)
	}
	_, err = Load(p, LoadOptions{Columns: map[string]string{"answer": "completion"}})
	if err == nil || !strings.Contains(err.Error(), `column "answer" not found`) {
		t.Errorf("missing column: got %v", err)
	}
}

func TestStackExchangePairedReal(t *testing.T) {
	p := sharedData(t, "torchtune-test-fixtures/stack_exchange_paired_tiny.json")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{Columns: map[string]string{"question": "prompt", "response_j": "chosen", "response_k": "rejected"}}), "train")
	prefs, err := d.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(prefs), 25; got != want {
		t.Errorf("pairs: got %d, want %d", got, want)
	}
}

func TestLoadRecordsAsJSON(t *testing.T) {
	// Records survive a JSON round trip unchanged (they are JSON-like).
	dir := t.TempDir()
	p := writeFile(t, dir, "a.jsonl", `{"a": [1, {"b": null}], "c": "d"}`+"\n")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	raw, err := json.Marshal(d.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, d.Records[0]) {
		t.Errorf("got %v, want %v", back, d.Records[0])
	}
}
