package datasets

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// view runs the named typed view and returns its error and kept count.
func view(d *Dataset, name string) (int, error) {
	switch name {
	case "Texts":
		v, err := d.Texts()
		return len(v), err
	case "Prompts":
		v, err := d.Prompts()
		return len(v), err
	case "PromptCompletions":
		v, err := d.PromptCompletions()
		return len(v), err
	case "Conversations":
		v, err := d.Conversations()
		return len(v), err
	case "Preferences":
		v, err := d.Preferences()
		return len(v), err
	case "UnpairedPreferences":
		v, err := d.UnpairedPreferences()
		return len(v), err
	case "Classifications":
		v, _, err := d.Classifications()
		return len(v), err
	case "Load":
		return d.Len(), nil
	}
	panic(name)
}

func TestBadRecords(t *testing.T) {
	good := map[string]string{
		"Texts":               `{"text": "ok"}`,
		"Prompts":             `{"prompt": "ok"}`,
		"PromptCompletions":   `{"prompt": "p", "completion": "c"}`,
		"Conversations":       `{"messages": [{"role": "user", "content": "hi"}]}`,
		"Preferences":         `{"prompt": "p", "chosen": "a", "rejected": "b"}`,
		"UnpairedPreferences": `{"prompt": "p", "completion": "c", "label": true}`,
		"Classifications":     `{"text": "t", "label": 1}`,
		"Load":                `{"text": "ok"}`,
	}
	tests := []struct {
		name, view, file, bad string
		wantMsg               string // expected after "file:2: "
	}{
		{"invalid JSON", "Load", "train.jsonl", `{"text": "a"`, "invalid JSON"},
		{"not an object", "Load", "train.jsonl", `["text"]`, "line is a JSON array, not an object"},
		{"json array element", "Load", "train.json", `"text"`, "array element is a JSON string, not an object"},
		{"tsv field count", "Load", "train.tsv", "only-one-field", "1 fields, want 2"},
		{"missing chosen", "Preferences", "train.jsonl", `{"prompt": "p", "chosen2": "a", "rejected": "b"}`, `field "chosen": missing`},
		{"missing completion", "PromptCompletions", "train.jsonl", `{"prompt": "p", "answer": "c"}`, `field "completion": missing`},
		{"missing label", "UnpairedPreferences", "train.jsonl", `{"prompt": "p", "completion": "c"}`, `field "label": missing`},
		{"missing text", "Texts", "train.jsonl", `{"txt": "p"}`, `cannot detect the format from fields txt`},
		{"null completion", "PromptCompletions", "train.jsonl", `{"prompt": "p", "completion": null}`, `field "completion": want a string, got null`},
		{"wrong type chosen", "Preferences", "train.jsonl", `{"prompt": "p", "chosen": 3, "rejected": "b"}`, `field "chosen": want a string, got number`},
		{"empty chosen", "Preferences", "train.jsonl", `{"prompt": "p", "chosen": "", "rejected": "b"}`, `field "chosen": empty string`},
		{"empty rejected", "Preferences", "train.jsonl", `{"prompt": "p", "chosen": "a", "rejected": ""}`, `field "rejected": empty string`},
		{"empty completion", "PromptCompletions", "train.jsonl", `{"prompt": "p", "completion": ""}`, `field "completion": empty string`},
		{"empty text", "Texts", "train.jsonl", `{"text": ""}`, `field "text": empty string`},
		{"invalid utf8 text", "Texts", "train.tsv", "bad \xff\xfe", `field "text": invalid UTF-8`},
		{"invalid utf8 prompt", "PromptCompletions", "train.tsv", "\xc3\x28\tc", `field "prompt": invalid UTF-8`},
		{"margin type", "Preferences", "train.jsonl", `{"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}`, `field "margin": want a number, got string`},
		{"message role", "Conversations", "train.jsonl", `{"messages": [{"content": "hi"}]}`, `field "messages[0].role": missing`},
		{"message content", "Conversations", "train.jsonl", `{"messages": [{"role": "user", "content": 5}]}`, `field "messages[0].content": want a string, got number`},
		{"empty conversation", "Conversations", "train.jsonl", `{"messages": []}`, `field "messages": empty message list`},
		{"unpaired label", "UnpairedPreferences", "train.jsonl", `{"prompt": "p", "completion": "c", "label": "yes"}`, `field "label": want a boolean, got string`},
		{"messages label", "UnpairedPreferences", "train.jsonl", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "label": "yes"}`, `field "label": want a boolean, got string`},
		{"messages without label", "UnpairedPreferences", "train.jsonl", `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`, `field "label": missing`},
		{"class label", "Classifications", "train.jsonl", `{"text": "t", "label": 1.5}`, `field "label": 1.5 is not an integer`},
		{"wrong format", "Preferences", "train.jsonl", `{"text": "t"}`, "record is language_modeling, want preference"},
		{"sharegpt speaker", "Conversations", "train.jsonl", `{"conversations": [{"from": "robot", "value": "x"}]}`, `field "conversations[0].from": unknown speaker "robot"`},
		{"alpaca output", "PromptCompletions", "train.jsonl", `{"instruction": "i", "input": "", "output": ""}`, `field "output": empty string`},
		// issue 11, item 13: JSON readers must not turn invalid UTF-8 into U+FFFD, and NUL bytes are refused.
		{"invalid utf8 jsonl", "Load", "train.jsonl", "{\"text\": \"a\xffb\"}", "invalid UTF-8 at byte 12"},
		{"invalid utf8 jsonl chosen", "Load", "train.jsonl", "{\"prompt\": \"p\", \"chosen\": \"\xc3\x28\", \"rejected\": \"b\"}", "invalid UTF-8"},
		{"NUL text", "Texts", "train.jsonl", `{"text": "a\u0000b"}`, `field "text": contains a NUL byte (\u0000) at byte 1`},
		{"NUL prompt", "PromptCompletions", "train.jsonl", `{"prompt": "p\u0000", "completion": "c"}`, `field "prompt": contains a NUL byte`},
		{"NUL message", "Conversations", "train.jsonl", `{"messages": [{"role": "user", "content": "\u0000"}]}`, `field "messages[0].content": contains a NUL byte`},
		{"NUL tsv", "Texts", "train.tsv", "a\x00b", `field "text": contains a NUL byte`},
		{"huge class label", "Classifications", "train.jsonl", `{"text": "t", "label": 1e300}`, `field "label": 1e+300 is too large for a class id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			content := ""
			switch filepath.Ext(tt.file) {
			case ".jsonl":
				content = good[tt.view] + "\n" + tt.bad + "\n" + good[tt.view] + "\n"
			case ".json":
				content = "[" + good[tt.view] + ",\n" + tt.bad + ",\n" + good[tt.view] + "]\n"
			case ".tsv":
				hdr, row := "text\tlabel", "fine\t1"
				if tt.view == "PromptCompletions" {
					hdr, row = "prompt\tcompletion", "p\tc"
				}
				if tt.view == "Texts" {
					hdr, row = "text", "fine"
				}
				content = hdr + "\n" + tt.bad + "\n" + row + "\n" + row + "\n"
			}
			p := writeFile(t, dir, tt.file, content)
			wantPrefix := fmt.Sprintf("datasets: %s:2: ", p)

			// Without SkipBadRecords: an error naming file:line and field.
			dd, err := Load(p, LoadOptions{})
			if err == nil {
				_, err = view(mustSplit(t, dd, "train"), tt.view)
			}
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.HasPrefix(err.Error(), wantPrefix) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error: got %q, want prefix %q containing %q", err, wantPrefix, tt.wantMsg)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Src.Line != 2 {
				t.Errorf("error %v is not a *RecordError for line 2", err)
			}

			// With SkipBadRecords: skipped and counted, the rest kept.
			d := mustSplit(t, mustLoad(t, p, LoadOptions{SkipBadRecords: true}), "train")
			n, err := view(d, tt.view)
			if err != nil {
				t.Fatalf("with SkipBadRecords: %v", err)
			}
			if n != 2 {
				t.Errorf("kept: got %d, want 2", n)
			}
			skipped, reasons := d.Skipped, d.SkipReasons
			if tt.view != "Load" {
				skipped, reasons = d.Checked.Skipped, d.Checked.Reasons
				if d.Checked.View != tt.view || d.Checked.Kept != 2 {
					t.Errorf("report: got %+v, want view %s kept 2", d.Checked, tt.view)
				}
			}
			if skipped != 1 || len(reasons) != 1 || !strings.Contains(reasons[0], tt.wantMsg) {
				t.Errorf("skipped: got %d %q, want 1 containing %q", skipped, reasons, tt.wantMsg)
			}
		})
	}
}

func TestSkipReasonsCapped(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	for i := 0; i < 25; i++ {
		sb.WriteString("not json\n")
	}
	sb.WriteString(`{"text": "ok"}` + "\n")
	d := mustSplit(t, mustLoad(t, writeFile(t, dir, "a.jsonl", sb.String()), LoadOptions{SkipBadRecords: true}), "train")
	if d.Skipped != 25 || len(d.SkipReasons) != MaxSkipReasons || d.Len() != 1 {
		t.Errorf("got skipped %d, reasons %d, kept %d; want 25, %d, 1", d.Skipped, len(d.SkipReasons), d.Len(), MaxSkipReasons)
	}
}

func TestIdenticalPairsCounted(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "p.jsonl", `{"prompt": "p", "chosen": "same", "rejected": "same"}`+"\n"+`{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 0.25}`+"\n")
	d := mustSplit(t, mustLoad(t, p, LoadOptions{}), "train")
	prefs, err := d.Preferences()
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 2 || d.Checked.IdenticalPairs != 1 {
		t.Errorf("got %d pairs, %d identical; want 2, 1", len(prefs), d.Checked.IdenticalPairs)
	}
	if prefs[0].Margin != nil || prefs[1].Margin == nil || *prefs[1].Margin != 0.25 {
		t.Errorf("margins: got %v, %v", prefs[0].Margin, prefs[1].Margin)
	}
}

// TestJSONInvalidUTF8: a JSON array file with invalid UTF-8 is an error
// naming the line, not text silently changed to U+FFFD (issue 11, item 13).
func TestJSONInvalidUTF8(t *testing.T) {
	p := writeFile(t, t.TempDir(), "train.json", "[{\"text\": \"ok\"},\n{\"text\": \"a\xffb\"}]\n")
	_, err := Load(p, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), p+":2: invalid UTF-8") {
		t.Errorf("Load = %v, want an error at line 2", err)
	}
}

// TestColumnCollisions: --columns entries that rename one column twice,
// two columns to one name, or onto an existing column are errors.
func TestColumnCollisions(t *testing.T) {
	for _, specs := range [][]string{{"a=x", "a=y"}, {"a=x", "b=x"}} {
		if _, err := ParseColumns(specs); err == nil {
			t.Errorf("ParseColumns(%v) accepted", specs)
		}
	}
	p := writeFile(t, t.TempDir(), "train.jsonl", `{"question": "q", "prompt": "p", "completion": "c"}`+"\n")
	m, _ := ParseColumns([]string{"question=prompt"})
	if _, err := Load(p, LoadOptions{Columns: m}); err == nil || !strings.Contains(err.Error(), `already has a column "prompt"`) {
		t.Errorf("rename onto an existing column: %v", err)
	}
	m, _ = ParseColumns([]string{"question=prompt", "prompt=old_prompt"})
	if _, err := Load(p, LoadOptions{Columns: m}); err != nil {
		t.Errorf("rename with the old column moved away: %v", err)
	}
}

// TestFolderTwoFormatsOneSplit: train.jsonl next to train.csv is an error
// naming both, not one of them read silently.
func TestFolderTwoFormatsOneSplit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.jsonl", `{"text": "a"}`+"\n")
	writeFile(t, dir, "train.csv", "text\nb\n")
	_, err := Load(dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "train.jsonl and train.csv both hold split train") {
		t.Errorf("Load = %v", err)
	}
	if _, err := Load(dir, LoadOptions{Format: "csv"}); err != nil {
		t.Errorf("with a format chosen: %v", err)
	}
}

// TestUnknownExtensionNamesFlag: the error names the setting, not a Go field.
func TestUnknownExtensionNamesFlag(t *testing.T) {
	_, err := Load("/dev/null", LoadOptions{})
	if err == nil || strings.Contains(err.Error(), "LoadOptions") || !strings.Contains(err.Error(), "--dataset-format") {
		t.Errorf("Load(/dev/null) = %v", err)
	}
}
