package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/shared/tokenizer"
	"github.com/rlsuite/rl/shared/tokenizer/realtok"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	log := zerolog.Nop()
	app := newApp(&log)
	var out bytes.Buffer
	app.Writer = &out
	err := app.Run(append([]string{"rl", "--log-level", "error"}, args...))
	return out.String(), err
}

// TestTokenizerEncodeDecode: encode prints tokenizer(text)'s ids (with and
// without special tokens, golden ids from Hugging Face tokenizers), decode
// gives the text back; bad ids are refused with the range.
func TestTokenizerEncodeDecode(t *testing.T) {
	set := realtok.Goldens(t)["llama3_1"]
	c := set.Find(t, "pair", 1, "full")
	dir := realtok.Dir("llama3_1")
	for _, special := range []bool{true, false} {
		args := []string{"tokenizer", "encode", "--tokenizer", dir}
		want := c.IDsSpecial
		if !special {
			args, want = append(args, "--no-special-tokens"), c.IDs
		}
		out, err := runApp(t, append(args, c.Text)...)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		if err := json.Unmarshal([]byte(out), &got); err != nil || !slices.Equal(got, want) {
			t.Errorf("encode (special %v): %q, want %v", special, out, want)
		}
	}
	b, _ := json.Marshal(c.IDs)
	out, err := runApp(t, "tokenizer", "decode", "--tokenizer", dir, string(b))
	if err != nil || strings.TrimSuffix(out, "\n") != c.Text {
		t.Errorf("decode: %q, %v; want %q", out, err, c.Text)
	}
	if _, err := runApp(t, "tokenizer", "decode", "--tokenizer", dir, "1 2 999999"); err == nil || !strings.Contains(err.Error(), "999999") {
		t.Errorf("decode of an id outside the vocabulary: %v", err)
	}
}

// TestDataShow: rl data show prints what the trainers train on: DPO's
// conversational pair with one BOS and labels on the completion only, and
// SFT's prompt-completion with -100 on the prompt.
func TestDataShow(t *testing.T) {
	dir := realtok.Dir("llama3_1")
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "pairs.jsonl")
	os.WriteFile(data, []byte(`{"prompt":[{"role":"user","content":"What colour is the sky on a clear day?"}],"chosen":[{"role":"assistant","content":"It is blue."}],"rejected":[{"role":"assistant","content":"It is green, obviously."}]}`+"\n"), 0o644)
	out, err := runApp(t, "data", "show", "--trainer", "dpo", "--model", dir, "--dataset", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ex []shown
	if err := json.Unmarshal([]byte(out), &ex); err != nil || len(ex) != 2 {
		t.Fatalf("output %q: %v", out, err)
	}
	g := realtok.Goldens(t)["llama3_1"]
	prompt, chosen := g.Find(t, "chat", 0, "prompt"), g.Find(t, "chat", 0, "chosen")
	if !slices.Equal(ex[0].IDs, chosen.IDs) {
		t.Errorf("chosen ids %v, want %v", ex[0].IDs, chosen.IDs)
	}
	for i, l := range ex[0].Labels {
		want := -100
		if i >= len(prompt.IDs) {
			want = chosen.IDs[i]
		}
		if l != want {
			t.Errorf("label %d = %d, want %d", i, l, want)
		}
	}
	if ex[0].IDs[0] != tok.BOS() || ex[0].IDs[1] == tok.BOS() {
		t.Errorf("want exactly one BOS: %v", ex[0].IDs[:3])
	}
	sftData := filepath.Join(t.TempDir(), "sft.jsonl")
	os.WriteFile(sftData, []byte(`{"prompt":"Q: 12+30=?\nA:","completion":"42"}`+"\n"), 0o644)
	out, err = runApp(t, "data", "show", "--trainer", "sft", "--model", dir, "--dataset", sftData)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "with loss") || !strings.Contains(out, "-100") || !strings.Contains(out, `"42"`) {
		t.Errorf("sft table:\n%s", out)
	}
}

// TestGenerateChatOneBOS: rl generate --chat encodes the rendered template
// without adding special tokens (one BOS), on templates that write
// bos_token (Llama-3.1, Gemma-3, Llama-2); plain prompts get the
// tokenizer's special tokens.
func TestGenerateChatOneBOS(t *testing.T) {
	for _, name := range []string{"llama3_1", "gemma3", "llama2"} {
		tok, err := tokenizer.Load(realtok.Dir(name))
		if err != nil {
			t.Fatal(err)
		}
		g := realtok.Goldens(t)[name]
		// the golden chat 0 prompt is one user message with the generation prompt
		p := g.Find(t, "chat", 0, "prompt")
		ids, err := encodePrompt(tok, p.Messages[0].Content, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, p.IDs) {
			t.Errorf("%s: --chat ids %v, want %v", name, ids, p.IDs)
		}
		if ids[0] != tok.BOS() || ids[1] == tok.BOS() {
			t.Errorf("%s: want one BOS, got %v", name, ids[:3])
		}
		plain, _ := encodePrompt(tok, "hi", false)
		want, _ := tok.Encode("hi", true)
		if !slices.Equal(plain, want) {
			t.Errorf("%s: plain prompt %v, want %v", name, plain, want)
		}
	}
}

// TestGlobalFlagAfterCommand: a global flag given after the command is
// explained; other unknown flags keep their message.
func TestGlobalFlagAfterCommand(t *testing.T) {
	log := zerolog.Nop()
	app := newApp(&log)
	app.Writer, app.ErrWriter = &bytes.Buffer{}, &bytes.Buffer{}
	err := app.Run([]string{"rl", "sft", "--threads", "2"})
	if err == nil || !strings.Contains(explain(app, err).Error(), "--threads is a global flag: give it before the command") {
		t.Errorf("rl sft --threads 2: %v", err)
	}
	err = app.Run([]string{"rl", "sft", "--no-such-flag", "2"})
	if err == nil || strings.Contains(explain(app, err).Error(), "global") {
		t.Errorf("rl sft --no-such-flag: %v", err)
	}
}

// TestDataShowKTO: rl data show --trainer kto prints each row with its
// label and its KL row, the prompt followed by the completion of the
// row before it in its batch (the first row: the batch's last).
func TestDataShowKTO(t *testing.T) {
	dir := realtok.Dir("llama3_1")
	data := filepath.Join(t.TempDir(), "rows.jsonl")
	os.WriteFile(data, []byte(`{"prompt":"The sky is","completion":" blue.","label":true}
{"prompt":"The sun is","completion":" in the sea.","label":false}
{"prompt":"Grass is","completion":" green.","label":true}
`), 0o644)
	out, err := runApp(t, "data", "show", "--trainer", "kto", "--model", dir, "--dataset", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ex [][]shown
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e []shown
		if err := json.Unmarshal([]byte(line), &e); err != nil || len(e) != 2 {
			t.Fatalf("line %q: %v", line, err)
		}
		ex = append(ex, e)
	}
	if len(ex) != 3 || !strings.HasPrefix(ex[0][0].Name, "desirable") || !strings.HasPrefix(ex[1][0].Name, "undesirable") {
		t.Fatalf("%d examples: %+v", len(ex), ex)
	}
	start := func(s shown) int { // the first completion token
		for i, l := range s.Labels {
			if l != -100 {
				return i
			}
		}
		return len(s.Labels)
	}
	for i, prev := range []int{2, 0, 1} {
		row, kl, nb := ex[i][0], ex[i][1], ex[prev][0]
		want := append(slices.Clone(row.IDs[:start(row)]), nb.IDs[start(nb):]...)
		if !slices.Equal(kl.IDs, want) || start(kl) != start(row) {
			t.Errorf("example %d: KL row %v (completion from %d), want %v (completion from %d)", i+1, kl.IDs, start(kl), want, start(row))
		}
	}
	if !strings.Contains(ex[0][0].Text, "The sky is blue.") || !strings.Contains(ex[0][1].Text, "The sky is green.") {
		t.Errorf("texts: %q, KL %q", ex[0][0].Text, ex[0][1].Text)
	}
}

// TestDataShowClassify: rl data show --trainer classify reads labels as rl
// classify trains on them (classify.Preview, the trainer's own parsing):
// float labels as regression scores, lists of names and 0/1 vectors as
// multi-label sets, class names with their ids, and problem_type from
// --config over integer labels.
func TestDataShowClassify(t *testing.T) {
	dir := realtok.Dir("bert-base-uncased")
	for _, tc := range []struct {
		name, rows, config string
		want               []string
	}{
		{"regression", `{"text":"a fine film","label":0.75}` + "\n" + `{"text":"awful","label":-1.5}`, "",
			[]string{"label 0.75 (regression)", "label -1.5 (regression)"}},
		{"names", `{"text":"a fine film","label":["good","funny"]}` + "\n" + `{"text":"awful","label":["bad"]}`, "",
			[]string{"labels [funny, good] (multi_label_classification)", "labels [bad] (multi_label_classification)"}},
		{"multi-hot", `{"text":"a fine film","label":[1,0,1]}` + "\n" + `{"text":"awful","label":[0,1,0]}`, "",
			[]string{"labels [1, 0, 1] (multi_label_classification)", "labels [0, 1, 0] (multi_label_classification)"}},
		{"single", `{"text":"a fine film","label":"pos"}` + "\n" + `{"text":"awful","label":"neg"}`, "",
			[]string{"label 1 (pos)", "label 0 (neg)"}},
		{"problem_type", `{"text":"a fine film","label":2}` + "\n" + `{"text":"awful","label":0}`, "problem_type: regression\n",
			[]string{"label 2 (regression)", "label 0 (regression)"}},
	} {
		tmp := t.TempDir()
		data := filepath.Join(tmp, "train.jsonl")
		os.WriteFile(data, []byte(tc.rows+"\n"), 0o644)
		args := []string{"data", "show", "--trainer", "classify", "--model", dir, "--dataset", data, "--json"}
		if tc.config != "" {
			cfg := filepath.Join(tmp, "classify.yaml")
			os.WriteFile(cfg, []byte(tc.config), 0o644)
			args = append(args, "--config", cfg)
		}
		out, err := runApp(t, args...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("%s: %d examples, want %d:\n%s", tc.name, len(lines), len(tc.want), out)
			continue
		}
		for i, line := range lines {
			var ex []shown
			if err := json.Unmarshal([]byte(line), &ex); err != nil || len(ex) != 1 {
				t.Fatalf("%s: line %q: %v", tc.name, line, err)
			}
			if word := []string{"fine", "awful"}[i]; ex[0].Name != tc.want[i] || !strings.Contains(ex[0].Text, word) {
				t.Errorf("%s: example %d is %q (%q), want %q", tc.name, i+1, ex[0].Name, ex[0].Text, tc.want[i])
			}
		}
	}
}
