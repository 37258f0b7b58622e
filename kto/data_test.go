package kto

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/preference/preftest"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// TestUnpair follows TRL's unpair_preference_dataset: per block of 1000
// pairs (datasets.map's batch), the chosen rows (label true), then the
// rejected rows (false), prompts and sources kept.
func TestUnpair(t *testing.T) {
	var prefs []datasets.Preference
	for i := range 1002 {
		prefs = append(prefs, datasets.Preference{Prompt: fmt.Sprint("p", i), Chosen: fmt.Sprint("c", i), Rejected: fmt.Sprint("r", i), Src: datasets.Source{File: "x", Line: i + 1}})
	}
	got := Unpair(prefs)
	if len(got) != 2004 {
		t.Fatalf("%d rows, want 2004", len(got))
	}
	check := func(row int, prompt, completion string, label bool, line int) {
		t.Helper()
		g := got[row]
		if g.Prompt != prompt || g.Completion != completion || g.Label != label || g.Src.Line != line {
			t.Errorf("row %d = %q %q %v line %d, want %q %q %v line %d", row, g.Prompt, g.Completion, g.Label, g.Src.Line, prompt, completion, label, line)
		}
	}
	check(0, "p0", "c0", true, 1)
	check(999, "p999", "c999", true, 1000)
	check(1000, "p0", "r0", false, 1)
	check(1999, "p999", "r999", false, 1000)
	check(2000, "p1000", "c1000", true, 1001) // the second block
	check(2001, "p1001", "c1001", true, 1002)
	check(2002, "p1000", "r1000", false, 1001)
	check(2003, "p1001", "r1001", false, 1002)

	// Conversational pairs keep their messages.
	m := func(role, s string) datasets.Message { return datasets.Message{Role: role, Content: s} }
	conv := Unpair([]datasets.Preference{{PromptMessages: []datasets.Message{m("user", "hi")}, ChosenMessages: []datasets.Message{m("assistant", "hello")}, RejectedMessages: []datasets.Message{m("assistant", "go away")}}})
	if len(conv) != 2 || conv[0].CompletionMessages[0].Content != "hello" || !conv[0].Label || conv[1].CompletionMessages[0].Content != "go away" || conv[1].Label || conv[1].PromptMessages[0].Content != "hi" {
		t.Errorf("conversational unpairing: %+v", conv)
	}
}

// TestAddKL: completions rotated by one within blocks of the batch size,
// worked by hand for 7 rows in blocks of 3: (x1,y3) (x2,y1) (x3,y2) |
// (x4,y6) (x5,y4) (x6,y5) | (x7,y7).
func TestAddKL(t *testing.T) {
	ex := make([]Example, 7)
	for i := range ex {
		ex[i].Completion = []int32{int32(10 * (i + 1))}
	}
	AddKL(ex, 3)
	want := []int32{30, 10, 20, 60, 40, 50, 70}
	for i, e := range ex {
		if len(e.KL) != 1 || e.KL[0] != want[i] {
			t.Errorf("row %d: KL completion %v, want [%d]", i+1, e.KL, want[i])
		}
	}
}

// TestCollateKLRows checks a collated batch by hand: rows prompt +
// completion cut to max_length, KL rows prompt + the neighbour's
// completion, the shifted completion masks, the padding.
func TestCollateKLRows(t *testing.T) {
	ex := []Example{
		{Prompt: []int32{1, 2, 3}, Completion: []int32{4, 5}, Label: true},
		{Prompt: []int32{7, 8}, Completion: []int32{9}, Label: false},
		{Prompt: []int32{11}, Completion: []int32{12, 13, 14, 15, 16}, Label: true},
	}
	AddKL(ex, 3)
	b := Collate(ex, 5, 0)
	wantIDs := []int64{
		1, 2, 3, 4, 5,
		7, 8, 9, 0, 0,
		11, 12, 13, 14, 15, // cut to max_length 5
	}
	wantMask := []float32{ // position t predicts token t+1
		0, 0, 1, 1, 0,
		0, 1, 0, 0, 0,
		1, 1, 1, 1, 0,
	}
	// KL rows: (x1, y3), (x2, y1), (x3, y2)
	wantKL := []int64{
		1, 2, 3, 12, 13, // prompt 1 + completion 3, cut
		7, 8, 4, 5, 0, // prompt 2 + completion 1
		11, 9, 0, 0, 0, // prompt 3 + completion 2
	}
	wantKLMask := []float32{
		0, 0, 1, 1, 0,
		0, 1, 1, 0, 0,
		1, 0, 0, 0, 0,
	}
	if b.B != 3 || b.T != 5 || b.TK != 5 || !slices.Equal(b.IDs, wantIDs) || !slices.Equal(b.Completion, wantMask) ||
		!slices.Equal(b.KLIDs, wantKL) || !slices.Equal(b.KLMask, wantKLMask) || !slices.Equal(b.Labels, []bool{true, false, true}) {
		t.Errorf("batch:\nids %v\nmask %v\nkl %v\nklmask %v\nlabels %v (B %d T %d TK %d)", b.IDs, b.Completion, b.KLIDs, b.KLMask, b.Labels, b.B, b.T, b.TK)
	}
	if b.NumTokens() != 5+3+5 {
		t.Errorf("NumTokens %d, want 13 (rows only)", b.NumTokens())
	}
	// Without KL completions (apo_zero_unpaired) there are no KL rows.
	for i := range ex {
		ex[i].KL = nil
	}
	if b := Collate(ex, 5, 0); b.TK != 0 || b.KLIDs != nil {
		t.Errorf("KL rows without KL completions: TK %d", b.TK)
	}
}

// TestWeightAdvice: TRL's warning and its bounds, the expected strings
// computed by TRL's own expressions in Python (kto_trainer.py).
func TestWeightAdvice(t *testing.T) {
	cases := []struct {
		nd, nu int
		wd, wu float64
		want   string // the bounds part; "" for no warning
	}{
		{100, 50, 1, 1, "[0.5, 0.67] or undesirable_weight in [1.5, 2.0]"},
		{100, 50, 0.6, 1, ""}, // desirable_weight in range
		{100, 50, 1, 1.8, ""}, // undesirable_weight in range
		{10, 0, 1, 1, "[0.1, 0.13] or undesirable_weight in [7.52, 10.0]"}, // one class: counts floored at 1
		{3, 7, 1, 1, "[2.33, 3.1] or undesirable_weight in [0.32, 0.43]"},
		{150, 150, 1, 1, ""}, // balanced
		{2, 3, 1, 2, "[3.0, 3.99] or undesirable_weight in [0.5, 0.67]"},
	}
	for _, tc := range cases {
		got := WeightAdvice(tc.nd, tc.nu, tc.wd, tc.wu)
		if tc.want == "" {
			if got != "" {
				t.Errorf("%d/%d weights %g/%g: warned %q", tc.nd, tc.nu, tc.wd, tc.wu, got)
			}
			continue
		}
		if !strings.Contains(got, "we recommend EITHER desirable_weight in "+tc.want+" (but NOT BOTH)") || !strings.HasPrefix(got, "You have different amounts of desirable/positive and undesirable/negative examples") {
			t.Errorf("%d/%d weights %g/%g: %q, want bounds %s", tc.nd, tc.nu, tc.wd, tc.wu, got, tc.want)
		}
	}
}

// writeFile writes body to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadRows(t *testing.T, path string) ([]datasets.UnpairedPreference, bool, error) {
	t.Helper()
	d, err := datasets.LoadSplit(path, "train", datasets.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return Rows(d)
}

// TestRows: unpaired rows (plain, conversational, LLaMA-Factory's messages
// + label) are read as they are; paired files, with an implicit prompt,
// are unpaired.
func TestRows(t *testing.T) {
	dir := t.TempDir()
	rs, paired, err := loadRows(t, writeFile(t, dir, "u.jsonl", `{"prompt": "1+1=", "completion": "2", "label": true}
{"prompt": "1+1=", "completion": "3", "label": false}
`))
	if err != nil || paired || len(rs) != 2 || !rs[0].Label || rs[1].Label || rs[1].Completion != "3" {
		t.Errorf("unpaired: %+v paired %v err %v", rs, paired, err)
	}
	rs, paired, err = loadRows(t, writeFile(t, dir, "m.jsonl", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "label": true}
`))
	if err != nil || paired || len(rs) != 1 || rs[0].PromptMessages[0].Content != "hi" || rs[0].CompletionMessages[0].Content != "hello" {
		t.Errorf("messages + label: %+v err %v", rs, err)
	}
	rs, paired, err = loadRows(t, writeFile(t, dir, "p.jsonl", `{"chosen": "Q: sky?\n\nAssistant: blue", "rejected": "Q: sky?\n\nAssistant: green"}
`))
	if err != nil || !paired || len(rs) != 2 {
		t.Fatalf("paired: %+v paired %v err %v", rs, paired, err)
	}
	if rs[0].Prompt != "Q: sky?\n\nAssistant:" || rs[0].Completion != " blue" || !rs[0].Label || rs[1].Completion != " green" || rs[1].Label {
		t.Errorf("implicit prompt unpaired: %+v", rs)
	}
}

// TestBadLabels: rows without a label or with a non-boolean one are
// errors that name the file, line and field.
func TestBadLabels(t *testing.T) {
	first := `{"prompt": "2+2=", "completion": "4", "label": true}` + "\n"
	cases := []struct{ name, body, want string }{
		{"no label", first + `{"prompt": "1+1=", "completion": "2"}`, "x.jsonl:2"},
		{"string label", first + `{"prompt": "1+1=", "completion": "2", "label": "yes"}`, "x.jsonl:2"},
		{"number label", first + `{"prompt": "1+1=", "completion": "2", "label": 3}`, "x.jsonl:2"},
		{"messages without label", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "label": false}` + "\n" +
			`{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}`, "x.jsonl:2"},
		{"messages with a string label", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "label": "true"}`, "x.jsonl:1"},
	}
	for _, tc := range cases {
		_, _, err := loadRows(t, writeFile(t, t.TempDir(), "x.jsonl", tc.body+"\n"))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "label") {
			t.Errorf("%s: error %q does not name %s and the label", tc.name, msg, tc.want)
		}
	}
}

// TestEncodeAsTRL: plain-text completions get the eos text, prompt and
// prompt+completion are tokenised jointly (the completion is what follows
// the prompt's tokens), and rows whose prompt fills max_length are
// dropped and counted.
func TestEncodeAsTRL(t *testing.T) {
	_, tokDir := preftest.SFTModel(t)
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(s string) []int32 {
		v, err := tok.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int32, len(v))
		for i, x := range v {
			out[i] = int32(x)
		}
		return out
	}
	eos, _ := tok.IDToToken(tok.EOS())
	rows := []datasets.UnpairedPreference{
		{Prompt: "3+4=", Completion: "7", Label: true},
		{Prompt: "3+4=", Completion: "8" + eos, Label: false}, // eos already there: not doubled
		{Prompt: "the quick brown fox jumps over the lazy dog 1+1=", Completion: "2", Label: true},
	}
	long := ids(rows[2].Prompt)
	enc := newEncoder(tok)
	ex, dropped, err := Encode(enc, rows, len(long), zerolog.Nop(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 1 || len(ex) != 2 {
		t.Fatalf("dropped %d kept %d, want 1 and 2 (a prompt of %d tokens with max_length %d)", dropped, len(ex), len(long), len(long))
	}
	for i, text := range []string{"3+4=7" + eos, "3+4=8" + eos} {
		p := ids("3+4=")
		full := ids(text)
		if !slices.Equal(ex[i].Prompt, p) || !slices.Equal(ex[i].Completion, full[len(p):]) {
			t.Errorf("row %d: prompt %v completion %v, want %v %v", i, ex[i].Prompt, ex[i].Completion, p, full[len(p):])
		}
		if ex[i].Completion[len(ex[i].Completion)-1] != int32(tok.EOS()) {
			t.Errorf("row %d: completion %v does not end in eos %d", i, ex[i].Completion, tok.EOS())
		}
	}
	// Conversations: the chat template's tokens (ChatML here), no eos
	// appended, the prompt rendered with the generation prompt.
	m := func(role, s string) datasets.Message { return datasets.Message{Role: role, Content: s} }
	cv := []datasets.UnpairedPreference{{PromptMessages: []datasets.Message{m("user", "3+4=")}, CompletionMessages: []datasets.Message{m("assistant", "7")}, Label: true}}
	cex, _, err := Encode(enc, cv, 0, zerolog.Nop(), "test")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := datasets.CompileChatTemplate(tok.ChatTemplate())
	pt, _ := tmpl.Apply(cv[0].PromptMessages, true, tok.TemplateSpecials())
	ft, _ := tmpl.Apply(append(slices.Clone(cv[0].PromptMessages), cv[0].CompletionMessages...), false, tok.TemplateSpecials())
	pIDs, _ := tok.Encode(pt, false)
	fIDs, _ := tok.Encode(ft, false)
	if len(cex[0].Prompt) != len(pIDs) || len(cex[0].Prompt)+len(cex[0].Completion) != len(fIDs) {
		t.Errorf("conversational: %d prompt + %d completion tokens, want %d of %d", len(cex[0].Prompt), len(cex[0].Completion), len(pIDs), len(fIDs))
	}
}
