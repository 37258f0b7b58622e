package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// sharedData returns ../shared/data/rel (relative to the module root),
// skipping the test when it is not present.
func sharedData(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("../shared/data not present")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "data", rel)
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("../shared/data/%s not present", rel)
	}
	return path
}

func load(tb testing.TB, rel string) *Tokenizer {
	tb.Helper()
	tk, err := Load(sharedData(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return tk
}

func encode(t *testing.T, tk *Tokenizer, s string, special bool) []int {
	t.Helper()
	ids, err := tk.Encode(s, special)
	if err != nil {
		t.Fatalf("Encode(%q): %v", s, err)
	}
	return ids
}

func decode(t *testing.T, tk *Tokenizer, ids []int, skip bool) string {
	t.Helper()
	s, err := tk.Decode(ids, skip)
	if err != nil {
		t.Fatalf("Decode(%v): %v", ids, err)
	}
	return s
}

// goldens holds ids computed by independent implementations: GPT-2 by
// tiktoken-go's r50k_base, Llama-2 (without BOS) by eliben/go-sentencepiece
// on tokenizer.model.
var goldens = []struct {
	text  string
	gpt2  []int
	llama []int
}{
	{"Hello world", []int{15496, 995}, []int{15043, 3186}},
	{" Hello world!", []int{18435, 995, 0}, []int{29871, 15043, 3186, 29991}},
	{"Hello\n\nWorld", []int{15496, 198, 198, 10603}, []int{15043, 13, 13, 14058}},
	{"I'm   fine,\tthanks!\r\n", []int{40, 1101, 220, 220, 3734, 11, 197, 27547, 0, 201, 198}, []int{306, 29915, 29885, 259, 2691, 29892, 12, 386, 1331, 29991, 30004, 13}},
	{"héllo wörld 😀 世界", []int{71, 2634, 18798, 266, 30570, 335, 30325, 222, 220, 10310, 244, 45911, 234}, []int{298, 3610, 417, 281, 1340, 430, 29871, 243, 162, 155, 131, 29871, 30793, 30967}},
	{"   leading", []int{220, 220, 3756}, []int{1678, 8236}},
	{"trailing   ", []int{9535, 4386, 220, 220, 220}, []int{25053, 1678}},
	{"numbers 12345 and 3.14159", []int{77, 17024, 17031, 2231, 290, 513, 13, 1415, 19707}, []int{3694, 29871, 29896, 29906, 29941, 29946, 29945, 322, 29871, 29941, 29889, 29896, 29946, 29896, 29945, 29929}},
	{"it's O'Neil's", []int{270, 338, 440, 6, 29354, 338}, []int{372, 29915, 29879, 438, 29915, 8139, 309, 29915, 29879}},
	{"\u00a0nbsp and\u3000ideographic", []int{1849, 77, 24145, 290, 5099, 222, 485, 6826}, []int{20246, 14239, 322, 30358, 680, 12122}},
	{"emoji 👩\u200d👩\u200d👧 🇺🇸", []int{368, 31370, 50169, 102, 447, 235, 41840, 102, 447, 235, 41840, 100, 12520, 229, 118, 8582, 229, 116}, []int{953, 29877, 2397, 29871, 243, 162, 148, 172, 30722, 243, 162, 148, 172, 30722, 243, 162, 148, 170, 29871, 243, 162, 138, 189, 243, 162, 138, 187}},
	{"code:\n    for i in range(10):\n        print(i)\n", []int{8189, 25, 198, 220, 220, 220, 329, 1312, 287, 2837, 7, 940, 2599, 198, 220, 220, 220, 220, 220, 220, 220, 3601, 7, 72, 8, 198}, []int{775, 29901, 13, 1678, 363, 474, 297, 3464, 29898, 29896, 29900, 1125, 13, 4706, 1596, 29898, 29875, 29897, 13}},
}

func TestGPT2Golden(t *testing.T) {
	tk := load(t, "gpt2-tokenizer")
	for _, g := range goldens {
		for _, special := range []bool{false, true} {
			if got := encode(t, tk, g.text, special); !slices.Equal(got, g.gpt2) {
				t.Errorf("Encode(%q, %v) = %v, want %v", g.text, special, got, g.gpt2)
			}
		}
		if got := decode(t, tk, g.gpt2, false); got != g.text {
			t.Errorf("Decode(%v) = %q, want %q", g.gpt2, got, g.text)
		}
	}
	if got, want := encode(t, tk, "<|endoftext|>Hi<|endoftext|>", false), []int{50256, 17250, 50256}; !slices.Equal(got, want) {
		t.Errorf("Encode with special token = %v, want %v", got, want)
	}
}

func TestLlamaGolden(t *testing.T) {
	tk := load(t, "llama-tokenizer-hf-internal-testing")
	for _, g := range goldens {
		if got := encode(t, tk, g.text, false); !slices.Equal(got, g.llama) {
			t.Errorf("Encode(%q, false) = %v, want %v", g.text, got, g.llama)
		}
		want := append([]int{1}, g.llama...)
		if got := encode(t, tk, g.text, true); !slices.Equal(got, want) {
			t.Errorf("Encode(%q, true) = %v, want %v", g.text, got, want)
		}
		if got := decode(t, tk, want, true); got != g.text {
			t.Errorf("Decode(%v, true) = %q, want %q", want, got, g.text)
		}
	}
	tests := []struct {
		text    string
		special bool
		want    []int
	}{
		{"Hello world", true, []int{1, 15043, 3186}},
		{"<s>hi</s>", false, []int{1, 7251, 2}},
		{"", true, []int{1}},
		{"", false, []int{}},
	}
	for _, tt := range tests {
		if got := encode(t, tk, tt.text, tt.special); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q, %v) = %v, want %v", tt.text, tt.special, got, tt.want)
		}
	}
	if tok, _ := tk.IDToToken(13); tok != "<0x0A>" {
		t.Errorf("IDToToken(13) = %q, want <0x0A>", tok)
	}
}

var roundTripTexts = []string{
	"",
	"Hello world",
	" Hello world!",
	"  two leading, two trailing  ",
	"tabs\tand\nnewlines\r\n\n\nend",
	"héllo wörld — naïve café, Ωμέγα, привет, 日本語, 한국어, العربية",
	"emoji 😀🎉 family 👩\u200d👩\u200d👧 flag 🇺🇸 skin 👍🏽",
	"combining e\u0301 and zero\u200bwidth and nbsp\u00a0!",
	"math ∑∫√π ≈ 3.14159; code: if (a && b) { return x<<2; }",
	"<|endoftext|> in text",
}

func TestRoundTrip(t *testing.T) {
	for _, rel := range []string{"gpt2-tokenizer", "llama-tokenizer-hf-internal-testing", "model-fake-gpt2-lmbuddy"} {
		tk := load(t, rel)
		for _, s := range roundTripTexts {
			if got := decode(t, tk, encode(t, tk, s, false), false); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q", rel, s, got)
			}
			if got := decode(t, tk, encode(t, tk, s, true), true); got != s && !strings.Contains(s, "<|") {
				t.Errorf("%s: Decode(Encode(%q, true), true) = %q", rel, s, got)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	gpt2 := load(t, "gpt2-tokenizer")
	llama := load(t, "llama-tokenizer-hf-internal-testing")
	tests := []struct {
		name string
		tk   *Tokenizer
		ids  []int
		skip bool
		want string
	}{
		{"gpt2 keep special", gpt2, []int{50256, 15496}, false, "<|endoftext|>Hello"},
		{"gpt2 skip special", gpt2, []int{50256, 15496, 50256}, true, "Hello"},
		{"gpt2 partial utf8", gpt2, []int{30325}, false, " \uFFFD"}, // "ĠðŁĺ": space + 3 of 4 emoji bytes
		{"gpt2 empty", gpt2, nil, false, ""},
		{"gpt2 ids without a token", gpt2, []int{-1, 15496, 50257, 60000}, false, "Hello"},
		{"llama keep special", llama, []int{1, 15043, 3186, 2}, false, "<s> Hello world</s>"},
		{"llama skip special", llama, []int{1, 15043, 3186, 2}, true, "Hello world"},
		{"llama partial utf8", llama, []int{243, 162}, false, "\uFFFD\uFFFD"},
		{"llama empty", llama, nil, true, ""},
	}
	for _, tt := range tests {
		if got := decode(t, tt.tk, tt.ids, tt.skip); got != tt.want {
			t.Errorf("%s: Decode(%v, %v) = %q, want %q", tt.name, tt.ids, tt.skip, got, tt.want)
		}
	}
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		rel                 string
		file                bool // LoadFile of tokenizer.json
		size, bos, eos, pad int
		unk, maxLen         int
		template            string // prefix of ChatTemplate
		tokID               string
		wantTokID           int
	}{
		{rel: "gpt2-tokenizer", size: 50257, bos: 50256, eos: 50256, pad: 50256, unk: -1, tokID: "Ġworld", wantTokID: 995},
		{rel: "model-fake-gpt2-lmbuddy", size: 50257, bos: 50256, eos: 50256, pad: 50256, unk: 50256, tokID: "<|endoftext|>", wantTokID: 50256},
		{rel: "llama-tokenizer-hf-internal-testing", size: 32000, bos: 1, eos: 2, pad: 0, unk: 0, maxLen: 2048,
			template: "{% if messages[0]['role'] == 'system' %}", tokID: "▁Hello", wantTokID: 15043},
		// Bare tokenizer.json: BOS from the template, no EOS (so no PAD).
		{rel: "llama-tokenizer-hf-internal-testing", file: true, size: 32000, bos: 1, eos: -1, pad: -1, unk: 0, tokID: "</s>", wantTokID: 2},
	}
	for _, tt := range tests {
		var tk *Tokenizer
		if tt.file {
			var err error
			if tk, err = LoadFile(filepath.Join(sharedData(t, tt.rel), TokenizerFile)); err != nil {
				t.Fatal(err)
			}
		} else {
			tk = load(t, tt.rel)
		}
		got := []int{tk.VocabSize(), tk.BOS(), tk.EOS(), tk.PAD(), tk.UNK(), tk.ModelMaxLength()}
		want := []int{tt.size, tt.bos, tt.eos, tt.pad, tt.unk, tt.maxLen}
		if !slices.Equal(got, want) {
			t.Errorf("%s (file %v): size, bos, eos, pad, unk, maxLen = %v, want %v", tt.rel, tt.file, got, want)
		}
		if !strings.HasPrefix(tk.ChatTemplate(), tt.template) || (tt.template == "") != (tk.ChatTemplate() == "") {
			t.Errorf("%s: ChatTemplate() = %.60q..., want prefix %q", tt.rel, tk.ChatTemplate(), tt.template)
		}
		if id, ok := tk.TokenToID(tt.tokID); !ok || id != tt.wantTokID {
			t.Errorf("%s: TokenToID(%q) = %d, %v, want %d", tt.rel, tt.tokID, id, ok, tt.wantTokID)
		}
		if tok, ok := tk.IDToToken(tt.wantTokID); !ok || tok != tt.tokID {
			t.Errorf("%s: IDToToken(%d) = %q, %v, want %q", tt.rel, tt.wantTokID, tok, ok, tt.tokID)
		}
	}
}

// tinyDir trains a small tokenizer and saves it to a new directory.
func tinyDir(t *testing.T) string {
	t.Helper()
	tk, err := Train(slices.Values(smallCorpus), TrainOptions{VocabSize: 300, SpecialTokens: []string{"<s>", "</s>", "<pad>"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tk.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConfigVariants(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		specialMap string            // "" leaves the file as saved
		extra      map[string]string // more files
		bos, eos   int
		pad        int
		maxLen     int
		template   string
		encoded    []int // Encode("the", true)
	}{
		{
			name:       "AddedToken objects, add_bos and add_eos",
			config:     `{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": {"content": "<pad>"}, "add_bos_token": true, "add_eos_token": true, "model_max_length": 512}`,
			specialMap: `{}`,
			bos:        0, eos: 1, pad: 2, maxLen: 512,
			encoded: []int{0, -1, 1},
		},
		{
			name:       "special_tokens_map wins, null bos, template list",
			config:     `{"bos_token": "<s>", "eos_token": "<s>", "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}], "model_max_length": 1000000000000000019884624838656}`,
			specialMap: `{"bos_token": null, "eos_token": {"content": "</s>"}}`,
			bos:        -1, eos: 1, pad: 1, template: "D",
			encoded: []int{-1},
		},
		{
			name:       "chat_template.jinja, bos not inferable",
			config:     `{"eos_token": "</s>"}`,
			specialMap: `{}`,
			extra:      map[string]string{"chat_template.jinja": "{{ messages }}"},
			bos:        -1, eos: 1, pad: 1, template: "{{ messages }}",
			encoded: []int{-1},
		},
	}
	for _, tt := range tests {
		dir := tinyDir(t)
		writeFile(t, filepath.Join(dir, ConfigFile), tt.config)
		if tt.specialMap != "" {
			writeFile(t, filepath.Join(dir, SpecialTokensFile), tt.specialMap)
		}
		for name, data := range tt.extra {
			writeFile(t, filepath.Join(dir, name), data)
		}
		tk, err := Load(dir)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := []int{tk.BOS(), tk.EOS(), tk.PAD(), tk.ModelMaxLength()}
		if want := []int{tt.bos, tt.eos, tt.pad, tt.maxLen}; !slices.Equal(got, want) {
			t.Errorf("%s: bos, eos, pad, maxLen = %v, want %v", tt.name, got, want)
		}
		if tk.ChatTemplate() != tt.template {
			t.Errorf("%s: ChatTemplate() = %q, want %q", tt.name, tk.ChatTemplate(), tt.template)
		}
		the := encode(t, tk, "the", false)
		var want []int
		for _, id := range tt.encoded {
			if id == -1 {
				want = append(want, the...)
			} else {
				want = append(want, id)
			}
		}
		if got := encode(t, tk, "the", true); !slices.Equal(got, want) {
			t.Errorf("%s: Encode(the, true) = %v, want %v", tt.name, got, want)
		}

		// Save keeps the settings.
		out := t.TempDir()
		if err := tk.Save(out); err != nil {
			t.Fatal(err)
		}
		re, err := Load(out)
		if err != nil {
			t.Fatalf("%s: reload: %v", tt.name, err)
		}
		got = []int{re.BOS(), re.EOS(), re.PAD(), re.ModelMaxLength()}
		if want := []int{tt.bos, tt.eos, tt.pad, tt.maxLen}; !slices.Equal(got, want) {
			t.Errorf("%s: after Save: bos, eos, pad, maxLen = %v, want %v", tt.name, got, want)
		}
		if re.ChatTemplate() != tt.template {
			t.Errorf("%s: after Save: ChatTemplate() = %q, want %q", tt.name, re.ChatTemplate(), tt.template)
		}
		if got := encode(t, re, "the", true); !slices.Equal(got, want) {
			t.Errorf("%s: after Save: Encode(the, true) = %v, want %v", tt.name, got, want)
		}
	}
}

func TestSaveLoaded(t *testing.T) {
	for _, rel := range []string{"llama-tokenizer-hf-internal-testing", "model-fake-gpt2-lmbuddy"} {
		src := sharedData(t, rel)
		tk := load(t, rel)
		dir := filepath.Join(t.TempDir(), "nested", "out")
		if err := tk.Save(dir); err != nil {
			t.Fatal(err)
		}
		orig, _ := os.ReadFile(filepath.Join(src, TokenizerFile))
		saved, err := os.ReadFile(filepath.Join(dir, TokenizerFile))
		if err != nil || !bytes.Equal(orig, saved) {
			t.Errorf("%s: saved tokenizer.json differs from the loaded one (err %v)", rel, err)
		}
		for _, name := range []string{ConfigFile, SpecialTokensFile} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !json.Valid(data) {
				t.Errorf("%s: %s is not valid JSON (err %v)", rel, name, err)
			}
		}
		re, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := []int{re.VocabSize(), re.BOS(), re.EOS(), re.PAD(), re.UNK(), re.ModelMaxLength()}
		want := []int{tk.VocabSize(), tk.BOS(), tk.EOS(), tk.PAD(), tk.UNK(), tk.ModelMaxLength()}
		if !slices.Equal(got, want) {
			t.Errorf("%s: after Save: size, bos, eos, pad, unk, maxLen = %v, want %v", rel, got, want)
		}
		if re.ChatTemplate() != tk.ChatTemplate() {
			t.Errorf("%s: after Save: chat template differs", rel)
		}
		for _, s := range roundTripTexts {
			if a, b := encode(t, tk, s, true), encode(t, re, s, true); !slices.Equal(a, b) {
				t.Errorf("%s: after Save: Encode(%q) = %v, want %v", rel, s, b, a)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := tinyDir(t)
	goodJSON, err := os.ReadFile(filepath.Join(good, TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	unsupportedModel := strings.Replace(string(goodJSON), `"type": "BPE"`, `"type": "Foo"`, 1)
	tests := []struct {
		name    string
		files   map[string]string // written into a fresh directory
		badFile string            // the file the error must name
		msg     string            // and a fragment of the message
	}{
		{"missing tokenizer.json", map[string]string{}, TokenizerFile, "no such file"},
		{"corrupt tokenizer.json", map[string]string{TokenizerFile: `{"model": {`}, TokenizerFile, "unexpected end"},
		{"tokenizer.json without model", map[string]string{TokenizerFile: `{"version": "1.0"}`}, TokenizerFile, "no model"},
		{"unsupported model", map[string]string{TokenizerFile: unsupportedModel}, TokenizerFile, `unsupported model type "Foo"`},
		{"bad merge", map[string]string{TokenizerFile: strings.Replace(string(goodJSON), `"merges": [`, `"merges": ["nothere y",`, 1)}, TokenizerFile, `"nothere" is not in the vocabulary`},
		{"corrupt tokenizer_config.json", map[string]string{TokenizerFile: string(goodJSON), ConfigFile: `{"bos_token": `}, ConfigFile, "unexpected end"},
		{"corrupt special_tokens_map.json", map[string]string{TokenizerFile: string(goodJSON), SpecialTokensFile: `[1, 2]`}, SpecialTokensFile, "cannot unmarshal"},
		{"unknown pad token", map[string]string{TokenizerFile: string(goodJSON), ConfigFile: `{"pad_token": "<nope>"}`}, ConfigFile, `pad_token "<nope>" is not in the vocabulary`},
		{"bad chat template", map[string]string{TokenizerFile: string(goodJSON), ConfigFile: `{"chat_template": 3}`}, ConfigFile, "chat_template"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		for name, data := range tt.files {
			writeFile(t, filepath.Join(dir, name), data)
		}
		_, err := Load(dir)
		if err == nil {
			t.Errorf("%s: Load succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, tt.badFile)) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want it to name %s and say %q", tt.name, err, tt.badFile, tt.msg)
		}
	}
}

// TestWordLevel loads a WordLevel tokenizer with a Whitespace
// pre-tokenizer (once handed to github.com/sugarme/tokenizer, now native).
func TestWordLevel(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, TokenizerFile), `{
  "version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "Whitespace"},
  "post_processor": null,
  "decoder": null,
  "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2, "!": 3}, "unk_token": "[UNK]"}
}`)
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := encode(t, tk, "hello world!", true), []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got, want := encode(t, tk, "hello there world", true), []int{1, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v (unknown word as [UNK])", got, want)
	}
	if got, want := decode(t, tk, []int{1, 2}, false), "hello world"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if got := tk.VocabSize(); got != 4 {
		t.Errorf("VocabSize() = %d, want 4", got)
	}
}

func TestSplitRegexGPT2(t *testing.T) {
	re, err := compileSplitRegex(gpt2Pattern)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"Hello\n\nWorld", []string{"Hello", "\n", "\n", "World"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a \t b", []string{"a", " \t", " b"}},
		{"a\t\tb", []string{"a", "\t", "\t", "b"}},
		{"end  ", []string{"end", "  "}},
		{"  hi", []string{" ", " hi"}},
		{"I'm they'LL", []string{"I", "'m", " they", "'", "LL"}},
		{"x\u00a0\u00a0y", []string{"x", "\u00a0", "\u00a0", "y"}},
		{"1234 5.6!!", []string{"1234", " 5", ".", "6", "!!"}},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range re.find(tt.in) {
			got = append(got, tt.in[m[0]:m[1]])
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("find(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := load(t, "gpt2-tokenizer")
	want := make([][]int, len(roundTripTexts))
	for i, s := range roundTripTexts {
		want[i] = encode(t, tk, s, false)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				i := (g + k) % len(roundTripTexts)
				got, err := tk.Encode(roundTripTexts[i], false)
				if err != nil || !slices.Equal(got, want[i]) {
					t.Errorf("concurrent Encode(%q) = %v, %v, want %v", roundTripTexts[i], got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEncode measures Encode on tinyshakespeare paragraphs, one call
// each, on one goroutine.
func BenchmarkEncode(b *testing.B) {
	data, err := os.ReadFile(sharedData(b, "tinyshakespeare/input.txt"))
	if err != nil {
		b.Fatal(err)
	}
	paras := strings.Split(string(data), "\n\n")
	trained, err := Train(slices.Values(paras), TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		tk   *Tokenizer
	}{
		{"gpt2", load(b, "gpt2-tokenizer")},
		{"llama", load(b, "llama-tokenizer-hf-internal-testing")},
		{"trained8192", trained},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			tokens := 0
			for b.Loop() {
				for _, p := range paras {
					ids, err := bm.tk.Encode(p, false)
					if err != nil {
						b.Fatal(err)
					}
					tokens += len(ids)
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func TestPreTokenizers(t *testing.T) {
	tests := []struct {
		config string
		in     string
		want   []string
	}{
		// The SplitDelimiterBehavior examples of the tokenizers documentation.
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "Removed", "invert": false}`, "the-final--countdown", []string{"the", "final", "countdown"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "Isolated", "invert": false}`, "the-final--countdown", []string{"the", "-", "final", "-", "-", "countdown"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious", "invert": false}`, "the-final--countdown", []string{"the-", "final-", "-", "countdown"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithNext", "invert": false}`, "the-final--countdown", []string{"the", "-final", "-", "-countdown"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "Contiguous", "invert": false}`, "the-final--countdown", []string{"the", "-", "final", "--", "countdown"}},
		{`{"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Removed", "invert": true}`, "ab12cd345", []string{"12", "345"}},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}`, "Hey  friend!", []string{"▁Hey", "▁", "▁friend!"}},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}`, "Hey friend", []string{"Hey▁friend"}},
		{`{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true}`, "x", []string{"▁x"}},
		{`{"type": "Digits", "individual_digits": true}`, "a123b", []string{"a", "1", "2", "3", "b"}},
		{`{"type": "Digits", "individual_digits": false}`, "a123b", []string{"a", "123", "b"}},
		{`{"type": "Whitespace"}`, "Hey, friend_1!  ça va?", []string{"Hey", ",", "friend_1", "!", "ça", "va", "?"}},
		{`{"type": "WhitespaceSplit"}`, " Hey,\tfriend ", []string{"Hey,", "friend"}},
		{`{"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": true}]}`, "a1 b", []string{"a", "1", "b"}},
		{`{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}`, "hi  there", []string{"Ġhi", "Ġ", "Ġthere"}},
		{`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}`, "hi there", []string{"hiĠthere"}},
	}
	for _, tt := range tests {
		var o obj
		if err := json.Unmarshal([]byte(tt.config), &o); err != nil {
			t.Fatal(err)
		}
		pre, err := buildPreTokenizer(o)
		if err != nil {
			t.Fatalf("%s: %v", tt.config, err)
		}
		var got []string
		for _, p := range pre([]piece{{text: tt.in, atStart: true}}) {
			got = append(got, p.text)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s on %q = %q, want %q", tt.config, tt.in, got, tt.want)
		}
	}
}
