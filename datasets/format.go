package datasets

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Format is a dataset layout: one of TRL's dataset formats, or a common
// public layout (alpaca, sharegpt) that converts to one.
type Format string

// TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats) and
// the public layouts DetectFormat recognises.
const (
	// FormatLanguageModeling: {"text": "..."}.
	FormatLanguageModeling Format = "language_modeling"
	// FormatConversational: {"messages": [{"role", "content"}, ...]}.
	FormatConversational Format = "conversational"
	// FormatPromptOnly: {"prompt": "..."} (GRPO, RLOO, PPO, online DPO).
	FormatPromptOnly Format = "prompt_only"
	// FormatConversationalPromptOnly: {"prompt": [messages]}.
	FormatConversationalPromptOnly Format = "conversational_prompt_only"
	// FormatPromptCompletion: {"prompt": "...", "completion": "..."}.
	FormatPromptCompletion Format = "prompt_completion"
	// FormatConversationalPromptCompletion: prompt and completion as message lists.
	FormatConversationalPromptCompletion Format = "conversational_prompt_completion"
	// FormatPreference: {"prompt"?, "chosen", "rejected"} as strings; without
	// "prompt" the prompt is implicit (see Preferences).
	FormatPreference Format = "preference"
	// FormatConversationalPreference: chosen and rejected (and prompt, if given)
	// as message lists.
	FormatConversationalPreference Format = "conversational_preference"
	// FormatUnpairedPreference: {"prompt", "completion", "label": bool} (KTO).
	FormatUnpairedPreference Format = "unpaired_preference"
	// FormatConversationalUnpairedPreference: prompt/completion as message lists,
	// or {"messages": [...], "label": bool} whose last message is the
	// completion (LLaMA-Factory's KTO layout).
	FormatConversationalUnpairedPreference Format = "conversational_unpaired_preference"
	// FormatStepwiseSupervision: {"prompt", "completions": [...], "labels": [bool]}.
	FormatStepwiseSupervision Format = "stepwise_supervision"
	// FormatClassification: {"text"|"sentence", "label"} or a sentence pair
	// ("sentence1"/"sentence2", "question1"/"question2",
	// "premise"/"hypothesis", "question"/"sentence", "text"/"text_pair")
	// with "label" (number, bool or string).
	FormatClassification Format = "classification"
	// FormatAlpaca: {"instruction", "input"?, "output"} -> FormatPromptCompletion.
	FormatAlpaca Format = "alpaca"
	// FormatShareGPT: {"conversations": [{"from", "value"}], "system"?} ->
	// FormatConversational.
	FormatShareGPT Format = "sharegpt"
	// FormatShareGPTPreference: ShareGPT conversations plus "chosen" and
	// "rejected" {"from", "value"} turns -> FormatConversationalPreference.
	FormatShareGPTPreference Format = "sharegpt_preference"
)

// IsConversational reports whether the format carries message lists.
func (f Format) IsConversational() bool {
	switch f {
	case FormatConversational, FormatConversationalPromptOnly, FormatConversationalPromptCompletion,
		FormatConversationalPreference, FormatConversationalUnpairedPreference, FormatShareGPT, FormatShareGPTPreference:
		return true
	}
	return false
}

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// textPairKeys are the sentence-pair columns of common classification sets.
var textPairKeys = [][2]string{
	{"sentence1", "sentence2"},
	{"question1", "question2"},
	{"premise", "hypothesis"},
	{"question", "sentence"},
	{"text", "text_pair"},
}

// DetectFormat infers the format of a record from its fields, in this
// order: chosen+rejected (preference; ShareGPT when chosen is a
// {"from","value"} turn), completion+label (unpaired preference),
// completions+labels (stepwise), prompt+completion, messages (+ bool label:
// unpaired), conversations (ShareGPT), instruction+output (alpaca), a
// classification text column with label, prompt alone, text alone. A
// field is conversational when it is a list of objects with "role".
func DetectFormat(r Record) (Format, error) {
	has := func(k string) bool { _, ok := r[k]; return ok }
	switch {
	case has("chosen") && has("rejected"):
		if isTurn(r["chosen"]) {
			return FormatShareGPTPreference, nil
		}
		if isMessages(r["chosen"]) || isMessages(r["prompt"]) {
			return FormatConversationalPreference, nil
		}
		return FormatPreference, nil
	case has("completion") && has("label") && !has("chosen"):
		if isMessages(r["completion"]) || isMessages(r["prompt"]) {
			return FormatConversationalUnpairedPreference, nil
		}
		return FormatUnpairedPreference, nil
	case has("completions") && has("labels"):
		return FormatStepwiseSupervision, nil
	case has("prompt") && has("completion"):
		if isMessages(r["prompt"]) || isMessages(r["completion"]) {
			return FormatConversationalPromptCompletion, nil
		}
		return FormatPromptCompletion, nil
	case has("messages"):
		if _, ok := r["label"].(bool); ok {
			return FormatConversationalUnpairedPreference, nil
		}
		return FormatConversational, nil
	case has("conversations"):
		if isMessages(r["conversations"]) {
			return FormatConversational, nil
		}
		return FormatShareGPT, nil
	case has("instruction") && has("output"):
		return FormatAlpaca, nil
	case has("label") && classificationText(r) != "":
		return FormatClassification, nil
	case has("prompt"):
		if isMessages(r["prompt"]) {
			return FormatConversationalPromptOnly, nil
		}
		return FormatPromptOnly, nil
	case has("text"):
		return FormatLanguageModeling, nil
	}
	return "", fmt.Errorf("datasets: cannot detect the format from fields %s", strings.Join(slices.Sorted(maps.Keys(r)), ", "))
}

// DetectFormat infers the dataset's format from its first record.
func (d *Dataset) DetectFormat() (Format, error) {
	if len(d.Records) == 0 {
		return "", fmt.Errorf("datasets: split %q is empty", d.Name)
	}
	f, err := DetectFormat(d.Records[0])
	if err != nil {
		return "", fmt.Errorf("datasets: %s: %w", d.Source(0), trimPrefix(err))
	}
	return f, nil
}

func trimPrefix(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "datasets: "))
}

// classificationText returns the name of the first text column of a
// classification record ("" when none).
func classificationText(r Record) string {
	for _, p := range textPairKeys {
		if _, ok := r[p[0]]; ok {
			if _, ok := r[p[1]]; ok {
				return p[0]
			}
		}
	}
	for _, k := range []string{"text", "sentence"} {
		if _, ok := r[k]; ok {
			return k
		}
	}
	return ""
}

// isMessages reports whether v looks like a list of role/content messages.
func isMessages(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	m, ok := l[0].(map[string]any)
	if !ok {
		return false
	}
	_, ok = m["role"]
	return ok
}

// isTurn reports whether v is a ShareGPT {"from", "value"} turn.
func isTurn(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, f := m["from"]
	_, val := m["value"]
	return f && val
}

// ShareGPTRoles maps ShareGPT "from" values to chat roles.
var ShareGPTRoles = map[string]string{
	"human":         "user",
	"user":          "user",
	"gpt":           "assistant",
	"assistant":     "assistant",
	"model":         "assistant",
	"chatgpt":       "assistant",
	"bing":          "assistant",
	"bard":          "assistant",
	"system":        "system",
	"observation":   "tool",
	"tool":          "tool",
	"function_call": "assistant",
}

// Normalize converts a record in a public layout to its TRL format:
//
//   - alpaca: prompt = instruction, or instruction + "\n\n" + input when
//     input is non-empty; completion = output.
//   - sharegpt: conversations [{from, value}] -> messages [{role, content}]
//     (human -> user, gpt -> assistant, system -> system, see
//     ShareGPTRoles); a "system" field becomes a leading system message.
//   - sharegpt preference: prompt = the converted conversations, chosen and
//     rejected = one-message lists of the converted turns.
//   - conversational records with "conversations" in role/content form is renamed
//     to "messages".
//
// Other records are returned unchanged (not copied). Fields not involved
// in the conversion are kept. Errors name the record's source and field.
func Normalize(r Record, src Source) (Record, Format, error) {
	f, err := DetectFormat(r)
	if err != nil {
		return nil, "", &RecordError{Src: src, Msg: strings.TrimPrefix(err.Error(), "datasets: ")}
	}
	switch f {
	case FormatAlpaca:
		ins, err := stringField(r, "instruction", src, false)
		if err != nil {
			return nil, f, err
		}
		out, err := stringField(r, "output", src, true)
		if err != nil {
			return nil, f, err
		}
		prompt := ins
		if v, ok := r["input"]; ok && v != nil {
			in, err := stringField(r, "input", src, false)
			if err != nil {
				return nil, f, err
			}
			if in != "" {
				prompt = ins + "\n\n" + in
			}
		}
		n := copyExcept(r, "instruction", "input", "output")
		n["prompt"], n["completion"] = prompt, out
		return n, FormatPromptCompletion, nil
	case FormatShareGPT, FormatShareGPTPreference:
		msgs, err := shareGPTMessages(r, src)
		if err != nil {
			return nil, f, err
		}
		if f == FormatShareGPT {
			n := copyExcept(r, "conversations", "system")
			n["messages"] = msgs
			return n, FormatConversational, nil
		}
		n := copyExcept(r, "conversations", "system", "chosen", "rejected")
		n["prompt"] = msgs
		for _, k := range []string{"chosen", "rejected"} {
			m, err := shareGPTTurn(r[k], src, k)
			if err != nil {
				return nil, f, err
			}
			n[k] = []any{m}
		}
		return n, FormatConversationalPreference, nil
	case FormatConversational:
		if _, ok := r["messages"]; !ok {
			n := copyExcept(r, "conversations")
			n["messages"] = r["conversations"]
			return n, f, nil
		}
	}
	return r, f, nil
}

func copyExcept(r Record, drop ...string) Record {
	n := make(Record, len(r))
	for k, v := range r {
		if !slices.Contains(drop, k) {
			n[k] = v
		}
	}
	return n
}

func shareGPTMessages(r Record, src Source) ([]any, error) {
	var msgs []any
	if v, ok := r["system"]; ok && v != nil {
		s, err := stringField(r, "system", src, false)
		if err != nil {
			return nil, err
		}
		if s != "" {
			msgs = append(msgs, map[string]any{"role": "system", "content": s})
		}
	}
	conv, ok := r["conversations"].([]any)
	if !ok {
		return nil, recErr(src, "conversations", "want a list of turns, got %s", jsonKind(r["conversations"]))
	}
	for i, t := range conv {
		m, err := shareGPTTurn(t, src, fmt.Sprintf("conversations[%d]", i))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func shareGPTTurn(v any, src Source, field string) (map[string]any, error) {
	t, ok := v.(map[string]any)
	if !ok {
		return nil, recErr(src, field, "want a {from, value} object, got %s", jsonKind(v))
	}
	if _, ok := t["role"]; ok { // already role/content
		return t, nil
	}
	from, ok := t["from"].(string)
	if !ok {
		return nil, recErr(src, field+".from", "want a string, got %s", jsonKind(t["from"]))
	}
	role, ok := ShareGPTRoles[strings.ToLower(from)]
	if !ok {
		return nil, recErr(src, field+".from", "unknown speaker %q", from)
	}
	val, ok := t["value"].(string)
	if !ok {
		return nil, recErr(src, field+".value", "want a string, got %s", jsonKind(t["value"]))
	}
	return map[string]any{"role": role, "content": val}, nil
}

// Normalize returns a copy of the dataset with every record converted by
// Normalize (alpaca and sharegpt layouts to TRL formats). Invalid records
// are an error, or skipped and counted in Checked with SkipBadRecords.
func (d *Dataset) Normalize() (*Dataset, error) {
	out := d.shallow()
	out.Records = make([]Record, 0, len(d.Records))
	out.Sources = make([]Source, 0, len(d.Records))
	rep := ViewReport{View: "Normalize"}
	seen := map[string]bool{}
	out.Columns = nil
	for i, r := range d.Records {
		n, _, err := Normalize(r, d.Source(i))
		if err != nil {
			if !d.SkipBadRecords {
				return nil, err
			}
			rep.skip(err)
			continue
		}
		out.Records = append(out.Records, n)
		out.Sources = append(out.Sources, d.Source(i))
		for _, k := range slices.Sorted(maps.Keys(n)) {
			if !seen[k] {
				seen[k] = true
				out.Columns = append(out.Columns, k)
			}
		}
	}
	rep.Kept = len(out.Records)
	out.Checked = rep
	d.Checked = rep
	return out, nil
}

func (r *ViewReport) skip(err error) {
	r.Skipped++
	if len(r.Reasons) < MaxSkipReasons {
		r.Reasons = append(r.Reasons, err.Error())
	}
}

// shallow copies the dataset's metadata, sharing records.
func (d *Dataset) shallow() *Dataset {
	c := *d
	c.Checked = ViewReport{}
	return &c
}
