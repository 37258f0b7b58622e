package classify

import (
	"slices"
	"testing"

	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// TestEncoderTemplates: for an encoder, a text is tokenizer(text) ([CLS]
// ... [SEP]) and a pair tokenizer(a, b) ([CLS] a [SEP] b [SEP], type ids
// 0 then 1), truncated longest-first to max_length with the special
// tokens kept, as transformers' truncation=True does; batches carry the
// type ids and the padding mask.
func TestEncoderTemplates(t *testing.T) {
	tok, err := tokenizer.Load(bertTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := model.Preset("tiny-bert", 30528)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoderFor(tok, 128, c)
	if err != nil {
		t.Fatal(err)
	}
	if !enc.Templates {
		t.Fatal("a bert model does not encode with the tokenizer's templates")
	}
	a, b := "The cat sat on the mat.", "A cat was sitting on a mat today."
	ids, types, err := enc.EncodeTypes(a, b)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs, wantTypes, err := tok.EncodePair(a, b, true)
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != 101 || ids[len(ids)-1] != 102 || !slices.Equal(toInts(ids), wantIDs) || !slices.Equal(toInts8(types), wantTypes) || types[len(types)-1] != 1 {
		t.Errorf("pair: ids %v types %v, want %v %v", ids, types, wantIDs, wantTypes)
	}
	single, stypes, err := enc.EncodeTypes(a, "")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tok.Encode(a, true)
	if !slices.Equal(toInts(single), want) || slices.Max(toInts8(stypes)) != 0 {
		t.Errorf("single: %v %v, want %v with type 0", single, stypes, want)
	}
	// truncation: 12 tokens, the longer text loses tokens first, specials kept
	enc.MaxLength = 12
	ids, types, err = enc.EncodeTypes(a, b)
	if err != nil {
		t.Fatal(err)
	}
	la, _ := tok.Encode(a, false)
	lb, _ := tok.Encode(b, false)
	if len(la) != 7 || len(lb) != 9 {
		t.Fatalf("test texts encode to %d and %d tokens, want 7 and 9", len(la), len(lb))
	}
	// 12 - 3 specials = 9: b 9 -> 5 then alternately a 7 -> 4... longest first: (7,9)->(7,8)->(7,7)->(6,7)->(6,6)->(5,6)->(5,5)->(4,5)
	wantPair, wantPT, _ := tok.PairTemplate(la[:4], lb[:5])
	if len(ids) != 12 || !slices.Equal(toInts(ids), wantPair) || !slices.Equal(toInts8(types), wantPT) {
		t.Errorf("truncated pair %v %v, want %v %v", ids, types, wantPair, wantPT)
	}
	d, err := enc.EncodeAll(nil)
	if err != nil || d.Types != nil {
		t.Fatalf("empty EncodeAll: %v %v", d, err)
	}
	d = &Data{X: [][]int32{ids, single[:3]}, Labels: []int{1, 0}, Types: [][]int8{types, stypes[:3]}}
	batch, _ := d.Batch([]int{0, 1})
	if batch.T != 12 || batch.TypeIDs[11] != 1 || batch.TypeIDs[12+2] != 0 || slices.Equal(batch.Mask()[12:], make([]int64, 12)) || batch.Mask()[12+3] != 0 || batch.Mask()[11] != 1 {
		t.Errorf("batch types %v mask %v", batch.TypeIDs, batch.Mask())
	}
	// a decoder keeps its own separator rule
	g, _ := model.Preset("tiny", 30528)
	denc, _ := NewEncoderFor(tok, 128, g)
	if denc.Templates {
		t.Error("a gpt2 model encodes with the templates")
	}
}

func toInts(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func toInts8(v []int8) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
