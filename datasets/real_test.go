package datasets

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"testing"
)

// lineCount is what `wc -l` prints: the number of "\n" in the file.
func lineCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte{'\n'})
}

func TestCoLARawTSVReal(t *testing.T) {
	path := sharedData(t, "glue-cola/cola_public/raw/in_domain_train.tsv")
	d, err := LoadSplit(path, "", LoadOptions{NoHeader: true, ColumnNames: []string{"source", "label", "mark", "sentence"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Len(), lineCount(t, path); got != want || got != 8551 {
		t.Errorf("records: got %d, want %d (wc -l) = 8551", got, want)
	}
	ex, names, err := d.Classifications()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, e := range ex {
		counts[e.Label]++
	}
	if want := map[int]int{0: 2528, 1: 6023}; !reflect.DeepEqual(counts, want) {
		t.Errorf("label counts: got %v, want %v", counts, want)
	}
	if names != nil {
		t.Errorf("names: got %v, want nil for integer labels", names)
	}
	if got, want := ex[0].Text, "Our friends won't buy this analysis, let alone the next one we propose."; got != want {
		t.Errorf("first sentence: got %q, want %q", got, want)
	}
}

func TestMRPCTSVReal(t *testing.T) {
	path := sharedData(t, "glue-mrpc/train.tsv")
	d, err := LoadSplit(path, "", LoadOptions{Columns: map[string]string{"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Len(), lineCount(t, path)-1; got != want || got != 3668 {
		t.Errorf("records: got %d, want %d (wc -l minus header) = 3668", got, want)
	}
	if got, want := d.Columns, []string{"label", "#1 ID", "#2 ID", "sentence1", "sentence2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("columns (BOM dropped from the first): got %q, want %q", got, want)
	}
	ex, _, err := d.Classifications()
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	for _, e := range ex {
		pos += e.Label
		if e.TextPair == "" {
			t.Fatalf("%s: no second sentence", e.Src)
		}
	}
	if pos != 2474 {
		t.Errorf("paraphrases: got %d, want 2474", pos)
	}
	want := Example{
		Text:     `Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.`,
		TextPair: `Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting his evidence.`,
		Label:    1,
		Src:      Source{File: path, Line: 2},
	}
	if ex[0] != want {
		t.Errorf("first pair: got %+v, want %+v", ex[0], want)
	}
}

func TestRTPolarityReal(t *testing.T) {
	for _, name := range []string{"rt-polarity.pos", "rt-polarity.neg"} {
		path := sharedData(t, "rt-polarity/"+name)
		d, err := LoadSplit(path, "", LoadOptions{Format: "text"})
		if err != nil {
			t.Fatal(err)
		}
		texts, err := d.Texts()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(texts), lineCount(t, path); got != want || got != 5331 {
			t.Errorf("%s: got %d lines, want %d (wc -l) = 5331", name, got, want)
		}
	}
	if _, err := Load(sharedData(t, "rt-polarity/rt-polarity.pos"), LoadOptions{}); err == nil {
		t.Error(".pos without Format: got no error")
	}
	// The folder with Format "text": both files in train, PROVENANCE.txt
	// left out.
	dir := sharedData(t, "rt-polarity")
	d, err := LoadSplit(dir, "", LoadOptions{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2*5331 {
		t.Errorf("folder: got %d records, want %d", d.Len(), 2*5331)
	}
}

func TestTrainTestSplit(t *testing.T) {
	d := &Dataset{Name: "train"}
	for i := range 100 {
		d.Records = append(d.Records, Record{"i": float64(i)})
		d.Sources = append(d.Sources, Source{File: "x.jsonl", Line: i + 1})
	}
	ids := func(d *Dataset) []int {
		var out []int
		for i, r := range d.Records {
			out = append(out, int(r["i"].(float64)))
			if d.Sources[i].Line != out[i]+1 {
				panic("sources out of step with records")
			}
		}
		return out
	}
	tr1, te1 := d.TrainTestSplit(0.1, 42)
	tr2, te2 := d.TrainTestSplit(0.1, 42)
	if !reflect.DeepEqual(ids(tr1), ids(tr2)) || !reflect.DeepEqual(ids(te1), ids(te2)) {
		t.Error("same seed gave different splits")
	}
	_, te3 := d.TrainTestSplit(0.1, 43)
	if reflect.DeepEqual(ids(te1), ids(te3)) {
		t.Error("different seeds gave the same test split")
	}
	if tr1.Name != "train" || te1.Name != "test" {
		t.Errorf("names: got %q, %q", tr1.Name, te1.Name)
	}
	all := append(ids(tr1), ids(te1)...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("train+test is not a partition of the records: %v", all)
		}
	}
	if slices.IsSorted(ids(tr1)) {
		t.Error("train is not shuffled")
	}
	sizes := []struct {
		testSize            float64
		wantTrain, wantTest int
	}{
		{0.1, 90, 10},
		{0.25, 75, 25},
		{0.013, 98, 2}, // ceil, like Hugging Face
		{5, 95, 5},     // >= 1: a count
		{0, 100, 0},
		{1000, 0, 100},
	}
	for _, s := range sizes {
		tr, te := d.TrainTestSplit(s.testSize, 1)
		if tr.Len() != s.wantTrain || te.Len() != s.wantTest {
			t.Errorf("testSize %v: got %d/%d, want %d/%d", s.testSize, tr.Len(), te.Len(), s.wantTrain, s.wantTest)
		}
	}
	if got := d.Shuffle(7); !reflect.DeepEqual(ids(got), ids(d.Shuffle(7))) || d.Records[0]["i"] != 0.0 {
		t.Error("Shuffle is not deterministic or changed the original")
	}

	dd := &DatasetDict{Splits: map[string]*Dataset{"train": d}}
	out, eval := dd.WithEvalSplit("", 0.2, 3)
	if eval != "test" || out.Splits["train"].Len() != 80 || out.Splits["test"].Len() != 20 {
		t.Errorf("WithEvalSplit: got %q %d/%d", eval, out.Splits["train"].Len(), out.Splits["test"].Len())
	}
	if _, eval := out.WithEvalSplit("", 0.2, 3); eval != "test" {
		t.Errorf("WithEvalSplit on a dict with test: got %q", eval)
	}
}
