package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func rec(t *testing.T, js string) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		rec  string
		want Format
	}{
		{`{"text": "x"}`, FormatLanguageModeling},
		{`{"messages": [{"role": "user", "content": "x"}]}`, FormatConversational},
		{`{"prompt": "x"}`, FormatPromptOnly},
		{`{"prompt": [{"role": "user", "content": "x"}]}`, FormatConversationalPromptOnly},
		{`{"prompt": "x", "completion": "y"}`, FormatPromptCompletion},
		{`{"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}]}`, FormatConversationalPromptCompletion},
		{`{"prompt": "x", "chosen": "a", "rejected": "b"}`, FormatPreference},
		{`{"chosen": "a", "rejected": "b"}`, FormatPreference},
		{`{"chosen": [{"role": "user", "content": "x"}], "rejected": [{"role": "user", "content": "y"}]}`, FormatConversationalPreference},
		{`{"prompt": [{"role": "user", "content": "x"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}`, FormatConversationalPreference},
		{`{"prompt": "x", "completion": "y", "label": true}`, FormatUnpairedPreference},
		{`{"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "assistant", "content": "y"}], "label": false}`, FormatConversationalUnpairedPreference},
		{`{"messages": [{"role": "user", "content": "x"}], "label": true}`, FormatConversationalUnpairedPreference},
		{`{"prompt": "x", "completions": ["a", "b"], "labels": [true, false]}`, FormatStepwiseSupervision},
		{`{"text": "x", "label": 1}`, FormatClassification},
		{`{"sentence": "x", "label": "pos"}`, FormatClassification},
		{`{"sentence1": "x", "sentence2": "y", "label": 0}`, FormatClassification},
		{`{"premise": "x", "hypothesis": "y", "label": 2}`, FormatClassification},
		{`{"instruction": "i", "input": "", "output": "o"}`, FormatAlpaca},
		{`{"conversations": [{"from": "human", "value": "x"}]}`, FormatShareGPT},
		{`{"conversations": [{"role": "user", "content": "x"}]}`, FormatConversational},
		{`{"conversations": [{"from": "human", "value": "x"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}}`, FormatShareGPTPreference},
	}
	for _, tt := range tests {
		got, err := DetectFormat(rec(t, tt.rec))
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat(%s) = %q, %v; want %q", tt.rec, got, err, tt.want)
		}
	}
	if _, err := DetectFormat(rec(t, `{"foo": 1, "bar": 2}`)); err == nil || !strings.Contains(err.Error(), "bar, foo") {
		t.Errorf("undetectable: got %v", err)
	}
	if !FormatShareGPTPreference.IsConversational() || FormatPreference.IsConversational() {
		t.Error("IsConversational wrong")
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
		format         Format
	}{
		{"alpaca with input", `{"instruction": "Add.", "input": "2 and 3", "output": "5", "id": 7}`,
			`{"prompt": "Add.\n\n2 and 3", "completion": "5", "id": 7}`, FormatPromptCompletion},
		{"alpaca empty input", `{"instruction": "Say hi.", "input": "", "output": "hi"}`,
			`{"prompt": "Say hi.", "completion": "hi"}`, FormatPromptCompletion},
		{"alpaca no input", `{"instruction": "Say hi.", "output": "hi"}`,
			`{"prompt": "Say hi.", "completion": "hi"}`, FormatPromptCompletion},
		{"sharegpt", `{"system": "Be brief.", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}`,
			`{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}`, FormatConversational},
		{"sharegpt preference", `{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "good"}, "rejected": {"from": "gpt", "value": "bad"}}`,
			`{"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "good"}], "rejected": [{"role": "assistant", "content": "bad"}]}`, FormatConversationalPreference},
		{"role/content conversations", `{"conversations": [{"role": "user", "content": "x"}]}`,
			`{"messages": [{"role": "user", "content": "x"}]}`, FormatConversational},
		{"already TRL", `{"prompt": "p", "completion": "c"}`, `{"prompt": "p", "completion": "c"}`, FormatPromptCompletion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, f, err := Normalize(rec(t, tt.in), Source{File: "x.json", Line: 1})
			if err != nil {
				t.Fatal(err)
			}
			if want := rec(t, tt.want); !reflect.DeepEqual(got, want) || f != tt.format {
				t.Errorf("got %v (%s), want %v (%s)", got, f, want, tt.format)
			}
		})
	}
}

func TestExtractPrompt(t *testing.T) {
	tests := []struct {
		name, chosen, rejected, prompt, c, r string
	}{
		{"hh marker", "\n\nHuman: Hi\n\nAssistant: Hello there", "\n\nHuman: Hi\n\nAssistant: Go away",
			"\n\nHuman: Hi\n\nAssistant:", " Hello there", " Go away"},
		{"hh marker, same first word (TRL: the common prefix)", "\n\nHuman: Hi\n\nAssistant: I can help", "\n\nHuman: Hi\n\nAssistant: I won't",
			"\n\nHuman: Hi\n\nAssistant: I", " can help", " won't"},
		{"hh multi-turn", "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: yes", "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: no",
			"\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:", " yes", " no"},
		{"plain prefix keeps space with responses", "The answer is 4", "The answer is 5", "The answer is", " 4", " 5"},
		{"plain prefix mid-word", "cat", "car", "ca", "t", "r"},
		{"no common prefix", "yes", "no", "", "yes", "no"},
		{"identical (TRL: all but the last character)", "same", "same", "sam", "e", "e"},
		{"one is a prefix (TRL: all but its last character)", "abc", "abcd", "ab", "c", "cd"},
		{"rune boundary", "é1", "è2", "", "é1", "è2"},
		{"rune boundary after ascii", "xé", "xè", "x", "é", "è"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c, r := ExtractPrompt(tt.chosen, tt.rejected)
			if p != tt.prompt || c != tt.c || r != tt.r {
				t.Errorf("got %q, %q, %q; want %q, %q, %q", p, c, r, tt.prompt, tt.c, tt.r)
			}
		})
	}

	u, a1, a2 := Message{"user", "q"}, Message{"assistant", "a1"}, Message{"assistant", "a2"}
	p, c, r := ExtractPromptMessages([]Message{u, a1}, []Message{u, a2})
	if !reflect.DeepEqual(p, []Message{u}) || !reflect.DeepEqual(c, []Message{a1}) || !reflect.DeepEqual(r, []Message{a2}) {
		t.Errorf("messages: got %v %v %v", p, c, r)
	}
}

func TestImplicitPromptHHReal(t *testing.T) {
	path := sharedData(t, "hh-rlhf-harmless-base/pairs.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Chosen, Rejected string }
	if err := json.Unmarshal(bytes.TrimSpace(first), &raw); err != nil {
		t.Fatal(err)
	}
	d, err := LoadSplit(path, "", LoadOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	prefs, err := d.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	p := prefs[0]
	// The pair diverges at the start of the final assistant turn: the
	// prompt is the dialogue up to and including its last "\n\nAssistant:"
	// (TRL's common prefix, less the space before the first difference).
	cut := strings.LastIndex(raw.Chosen, "\n\nAssistant:") + len("\n\nAssistant:")
	if want := raw.Chosen[:cut]; p.Prompt != want {
		t.Errorf("prompt: got %q, want %q", p.Prompt, want)
	}
	if got, want := p.Chosen, " No, sorry!  All of these involve a pen, the point is that you can get funny results by doing pranks with pens."; got != want {
		t.Errorf("chosen: got %q, want %q", got, want)
	}
	if !strings.HasPrefix(p.Rejected, " There are lots of funny things you can do with ") {
		t.Errorf("rejected: got %q", p.Rejected)
	}
	if p.Prompt+p.Chosen != raw.Chosen || p.Prompt+p.Rejected != raw.Rejected {
		t.Error("prompt + response does not give back the original strings")
	}
	if got, want := strings.Count(p.Prompt, "\n\nHuman:"), 3; got != want {
		t.Errorf("human turns in prompt: got %d, want %d", got, want)
	}

	// The whole file: every pair splits at TRL's extract_prompt point: the
	// first differing character, or the space before it.
	all, err := LoadSplit(path, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefs, err = all.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 1500 {
		t.Errorf("pairs: got %d, want 1500", len(prefs))
	}
	for _, p := range prefs {
		c, r := p.Chosen, p.Rejected
		if c != "" && r != "" && c[0] == ' ' && r[0] == ' ' {
			c, r = c[1:], r[1:]
		}
		if c != "" && r != "" && c[0] == r[0] {
			t.Fatalf("%s: chosen and rejected agree past the prompt: %q | %q", p.Src, p.Chosen[:min(20, len(p.Chosen))], p.Rejected[:min(20, len(p.Rejected))])
		}
	}
}

func TestAlpacaReal(t *testing.T) {
	path := sharedData(t, "llamafactory-demo-data/alpaca_en_demo.json")
	d, err := LoadSplit(path, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := d.DetectFormat(); err != nil || f != FormatAlpaca {
		t.Errorf("format: got %q, %v", f, err)
	}
	pcs, err := d.PromptCompletions()
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) != 999 {
		t.Errorf("examples: got %d, want 999", len(pcs))
	}
	withInput := 0
	for i, pc := range pcs {
		r := d.Records[i]
		want := r["instruction"].(string)
		if in := r["input"].(string); in != "" {
			want += "\n\n" + in
			withInput++
		}
		if pc.Prompt != want || pc.Completion != r["output"] {
			t.Fatalf("%s: got prompt %q", pc.Src, pc.Prompt)
		}
	}
	if withInput != 412 {
		t.Errorf("examples with input: got %d, want 412", withInput)
	}
	if got, want := pcs[0].Src.Line, 2; got != want {
		t.Errorf("first record line: got %d, want %d", got, want)
	}
}

func TestShareGPTPreferenceReal(t *testing.T) {
	path := sharedData(t, "llamafactory-demo-data/dpo_en_demo.json")
	d, err := LoadSplit(path, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefs, err := d.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 300 {
		t.Fatalf("pairs: got %d, want 300", len(prefs))
	}
	p := prefs[0]
	wantPrompt := []Message{{"user", "Hi! I'd like to create a new language game simulating the first person perspective of a character named Angela."}}
	if !reflect.DeepEqual(p.PromptMessages, wantPrompt) {
		t.Errorf("prompt: got %v, want %v", p.PromptMessages, wantPrompt)
	}
	if len(p.ChosenMessages) != 1 || p.ChosenMessages[0].Role != "assistant" || !strings.HasPrefix(p.ChosenMessages[0].Content, "That sounds like a fun and engaging idea!") {
		t.Errorf("chosen: got %v", p.ChosenMessages)
	}
	if len(p.RejectedMessages) != 1 || p.RejectedMessages[0].Role != "assistant" {
		t.Errorf("rejected: got %v", p.RejectedMessages)
	}
	systems := 0
	for _, p := range prefs {
		if p.PromptMessages[0].Role == "system" {
			systems++
		}
		if last := p.PromptMessages[len(p.PromptMessages)-1]; last.Role != "user" {
			t.Errorf("%s: prompt ends with %q", p.Src, last.Role)
		}
	}
	if systems != 80 {
		t.Errorf("prompts with a system message: got %d, want 80", systems)
	}
	if d.Checked.IdenticalPairs != 0 {
		t.Errorf("identical pairs: got %d", d.Checked.IdenticalPairs)
	}
}

func TestKTOReal(t *testing.T) {
	path := sharedData(t, "llamafactory-demo-data/kto_en_demo.json")
	d, err := LoadSplit(path, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	us, err := d.UnpairedPreferences()
	if err != nil {
		t.Fatal(err)
	}
	desirable := 0
	for _, u := range us {
		if u.Label {
			desirable++
		}
		if len(u.CompletionMessages) != 1 || u.CompletionMessages[0].Role != "assistant" || len(u.PromptMessages) == 0 {
			t.Fatalf("%s: got %+v", u.Src, u)
		}
	}
	if len(us) != 300 || desirable != 150 {
		t.Errorf("got %d examples, %d desirable; want 300, 150", len(us), desirable)
	}
}

func TestConversationsAndPrompts(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.jsonl", `{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}`+"\n"+
		`{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}, {"role": "assistant", "content": "c"}]}`+"\n")
	d, err := LoadSplit(p, "", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	convs, err := d.Conversations()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]Message{
		{{"user", "Hi"}, {"assistant", "Yo"}},
		{{"user", "ab"}, {"assistant", "c"}},
	}
	for i, c := range convs {
		if !reflect.DeepEqual(c.Messages, want[i]) {
			t.Errorf("conversation %d: got %v, want %v", i, c.Messages, want[i])
		}
	}

	q := writeFile(t, dir, "gsm.jsonl", `{"question": "1+1?", "answer": "#### 2"}`+"\n")
	d, err = LoadSplit(q, "", LoadOptions{Columns: map[string]string{"question": "prompt"}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := d.Prompts()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Text != "1+1?" || ps[0].Record["answer"] != "#### 2" {
		t.Errorf("prompts: got %+v", ps)
	}
}

func TestGSM8KPromptsReal(t *testing.T) {
	path := sharedData(t, "gsm8k/train.jsonl")
	d, err := LoadSplit(path, "", LoadOptions{Columns: map[string]string{"question": "prompt"}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := d.Prompts()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 7473 {
		t.Errorf("prompts: got %d, want 7473", len(ps))
	}
	if _, ok := ps[0].Record["answer"].(string); !ok {
		t.Error("answer column not kept")
	}
}
