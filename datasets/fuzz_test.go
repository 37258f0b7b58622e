package datasets

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/parquet-go/parquet-go"
)

// fuzzFile writes b to a file named name in a per-process directory on
// tmpfs when there is one: t.TempDir on a busy disk makes fuzzing crawl.
func fuzzFile(t *testing.T, name string, b []byte) string {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("rl-fuzz-%d", os.Getpid()))
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir = filepath.Join("/dev/shm", fmt.Sprintf("rl-fuzz-%d", os.Getpid()))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// exercise runs every typed view over each split, with and without
// SkipBadRecords: none may panic.
func exercise(t *testing.T, p string, opts LoadOptions) {
	for _, skip := range []bool{false, true} {
		opts.SkipBadRecords = skip
		dd, err := Load(p, opts)
		if err != nil {
			continue
		}
		for _, name := range dd.Names() {
			d, _ := dd.Split(name)
			for _, v := range []string{"Texts", "Prompts", "PromptCompletions", "Conversations", "Preferences", "UnpairedPreferences", "Classifications"} {
				view(d, v)
			}
			if nd, err := d.Normalize(); err == nil {
				nd.DetectFormat()
			}
		}
	}
}

var jsonSeeds = []string{
	`{"prompt": "p", "chosen": "a", "rejected": "b"}` + "\n" + `{"text": "x"}` + "\n",
	`{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}]}`,
	`{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}`,
	`{"instruction": "i", "input": "", "output": "o"}`,
	`{"text": "t", "label": 1e300}` + "\n" + `{"text": "t", "label": -1}` + "\n" + `{"text": "t", "label": "pos"}`,
	`{"prompt": "p", "completion": "c", "label": true}`,
	`{"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}`,
	`{"chosen": "same", "rejected": "same"}`,
	"{\"text\": \"a\xffb\"}", `{"text": "a\u0000b"}`, `{"text": "a"`, `["text"]`, `null`, "\xef\xbb\xbf{\"text\": \"bom\"}",
}

// FuzzJSONL: JSON Lines input never panics or hangs the reader or the views.
func FuzzJSONL(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, fuzzFile(t, "train.jsonl", b), LoadOptions{})
	})
}

// FuzzJSON: JSON (arrays, split objects, {"data": [...]}, concatenated objects).
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`[{"text": "a"}, {"text": "b"}]`, `{"train": [{"text": "a"}], "test": [{"text": "b"}]}`,
		`{"data": [{"prompt": "p", "completion": "c"}]}`, `{"text": "a"} {"text": "b"}`, `[{"text": "a"}, "x"]`, `[`, `{"train": 3}`, "[{\"text\": \"\xc3\x28\"}]", `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, fuzzFile(t, "train.json", b), LoadOptions{})
	})
}

// FuzzCSV: CSV and TSV, with and without a header.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{"prompt,completion\n1+1=,2\n2+2=,\n3+3=,6,extra\n", "text,label\n\"a \"\"q\"\"\",1\nb,2\n", "chosen,rejected\nx,x\n",
		"\"unterminated\n", "a\x00b,c\n", "\xef\xbb\xbftext\nbom\n", ",\n,\n", "text\n\xff\n"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, tsv bool) {
		name := "train.csv"
		if tsv {
			name = "train.tsv"
		}
		p := fuzzFile(t, name, b)
		exercise(t, p, LoadOptions{})
		exercise(t, p, LoadOptions{NoHeader: true, ColumnNames: []string{"text", "label"}})
	})
}

// FuzzParquet: Parquet files, from valid ones to truncated and bit-flipped.
func FuzzParquet(f *testing.F) {
	m := 0.5
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []pqRow{{Prompt: "p1", Label: 1, Margin: &m, Ok: true, Tags: []string{"a"}, Messages: []pqMessage{{"user", "hi"}}}, {Prompt: "p2"}}); err != nil {
		f.Fatal(err)
	}
	valid := buf.Bytes()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[len(valid)/2:])
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-9] ^= 0xff
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, fuzzFile(t, "train.parquet", b), LoadOptions{})
	})
}

// FuzzArrow: Arrow IPC stream and file formats.
func FuzzArrow(f *testing.F) {
	rec := classificationBatch([]string{"a b", "c"}, []int64{0, 1})
	var stream, file bytes.Buffer
	w := ipc.NewWriter(&stream, ipc.WithSchema(rec.Schema()))
	w.Write(rec)
	w.Close()
	fw, err := ipc.NewFileWriter(&file, ipc.WithSchema(rec.Schema()))
	if err != nil {
		f.Fatal(err)
	}
	fw.Write(rec)
	fw.Close()
	for _, b := range [][]byte{stream.Bytes(), file.Bytes()} {
		f.Add(b)
		f.Add(b[:len(b)/2])
		c := bytes.Clone(b)
		c[len(c)/3] ^= 0x5a
		f.Add(c)
	}
	f.Add([]byte("ARROW1\x00\x00"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, fuzzFile(t, "train.arrow", b), LoadOptions{})
	})
}

// FuzzChatTemplate: the renderer never panics or hangs on any messages
// with the default template and templates using generation markers, and a
// template source mutated from them compiles or fails cleanly.
func FuzzChatTemplate(f *testing.F) {
	gen := "{% for m in messages %}{{ m.role }}: {% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
	f.Add("", "user", "hi", "assistant", "yo", true)
	f.Add(gen, "system", "be brief", "user", "a, b", false)
	f.Add("{{ raise_exception('no') }}", "user", "x", "assistant", "y", true)
	f.Add("{% for m in messages %}{{ m.content | trim }}{{ eos_token }}{% endfor %}", "user", "\x00", "assistant", "\xff", false)
	f.Add("{% if %}", "user", "x", "user", "y", false)
	f.Add("{{ messages[5].content }}", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, tmpl, r1, c1, r2, c2 string, addGen bool) {
		if len(tmpl) > 2000 || bytes.Contains([]byte(tmpl), []byte("range")) {
			return // loops of a template's own making are the template's business
		}
		msgs := []Message{{Role: r1, Content: c1}, {Role: r2, Content: c2}}
		special := map[string]string{"bos_token": "<s>", "eos_token": "</s>"}
		ApplyChatTemplate(tmpl, msgs, addGen, special)
		AssistantSpans(tmpl, msgs, special)
	})
}
