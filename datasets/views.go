package datasets

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PromptCompletion is one prompt-completion example. Standard examples set
// Prompt and Completion; conversational ones set PromptMessages and
// CompletionMessages instead.
type PromptCompletion struct {
	Prompt, Completion                 string
	PromptMessages, CompletionMessages []Message
	Src                                Source
}

// Preference is one preference pair. Standard pairs set Prompt, Chosen and
// Rejected; conversational ones the *Messages fields instead.
type Preference struct {
	Prompt, Chosen, Rejected                         string
	PromptMessages, ChosenMessages, RejectedMessages []Message
	// Margin is the optional "margin" column (reward margin), nil when
	// absent or null.
	Margin *float64
	Src    Source
}

// UnpairedPreference is one KTO example: a completion labelled desirable
// (true) or undesirable (false).
type UnpairedPreference struct {
	Prompt, Completion                 string
	PromptMessages, CompletionMessages []Message
	Label                              bool
	Src                                Source
}

// Prompt is one prompt-only example (for online trainers: GRPO, RLOO, PPO,
// online DPO). Record is the whole normalised record, so reward functions
// can read extra columns (e.g. a reference answer).
type Prompt struct {
	Text     string
	Messages []Message
	Record   Record
	Src      Source
}

// Conversation is one conversational language-modeling example.
type Conversation struct {
	Messages []Message
	Src      Source
}

// Example is one classification example. Label is the class id; -1 marks
// an unlabeled example (as in GLUE test splits).
type Example struct {
	Text, TextPair string
	Label          int
	Src            Source
}

// viewRun collects one view call's report.
type viewRun struct {
	d   *Dataset
	rep ViewReport
}

func (d *Dataset) startView(name string) *viewRun {
	return &viewRun{d: d, rep: ViewReport{View: name}}
}

// fail handles an invalid record: returns the error, or skips it with
// SkipBadRecords.
func (v *viewRun) fail(err error) error {
	if !v.d.SkipBadRecords {
		v.d.Checked = v.rep
		return err
	}
	v.rep.skip(err)
	return nil
}

func (v *viewRun) done(kept int) {
	v.rep.Kept = kept
	v.d.Checked = v.rep
}

// normalized yields each record converted by Normalize, with its format.
func (v *viewRun) each(fn func(r Record, f Format, src Source) error) error {
	for i, r := range v.d.Records {
		src := v.d.Source(i)
		n, f, err := Normalize(r, src)
		if err == nil {
			err = fn(n, f, src)
		}
		if err != nil {
			if err := v.fail(err); err != nil {
				return err
			}
		}
	}
	return nil
}

// wrongFormat reports a record of another format than a view wants: as a
// missing field when the record has some of the wanted fields, else as a
// format mismatch.
func wrongFormat(r Record, src Source, got Format, want string, fields ...string) error {
	some := false
	for _, f := range fields {
		if _, ok := r[f]; ok {
			some = true
		}
	}
	if some {
		for _, f := range fields {
			if _, ok := r[f]; !ok {
				return recErr(src, f, "missing")
			}
		}
	}
	return recErr(src, "", "record is %s, want %s", got, want)
}

// Texts returns the "text" column of a language-modeling dataset. Each text
// must be a non-empty valid UTF-8 string.
func (d *Dataset) Texts() ([]string, error) {
	v := d.startView("Texts")
	var out []string
	err := v.each(func(r Record, f Format, src Source) error {
		if f != FormatLanguageModeling && f != FormatClassification {
			return wrongFormat(r, src, f, "language_modeling (text)", "text")
		}
		s, err := stringField(r, "text", src, true)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// Prompts returns prompt-only examples. Any record with a "prompt" field
// qualifies (prompt-completion and preference records too, their other
// fields kept in Prompt.Record); alpaca records use their converted
// prompt. The prompt must be a non-empty string or message list.
func (d *Dataset) Prompts() ([]Prompt, error) {
	v := d.startView("Prompts")
	var out []Prompt
	err := v.each(func(r Record, f Format, src Source) error {
		if _, ok := r["prompt"]; !ok {
			return recErr(src, "prompt", "missing (record is %s)", f)
		}
		p := Prompt{Record: r, Src: src}
		if isMessages(r["prompt"]) {
			msgs, err := messagesField(r, "prompt", src)
			if err != nil {
				return err
			}
			p.Messages = msgs
		} else {
			s, err := stringField(r, "prompt", src, true)
			if err != nil {
				return err
			}
			p.Text = s
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// PromptCompletions returns prompt-completion examples (standard or
// conversational; alpaca records converted). The completion must be
// non-empty; the prompt may be empty.
func (d *Dataset) PromptCompletions() ([]PromptCompletion, error) {
	v := d.startView("PromptCompletions")
	var out []PromptCompletion
	err := v.each(func(r Record, f Format, src Source) error {
		var pc PromptCompletion
		var err error
		switch f {
		case FormatPromptCompletion:
			if pc.Prompt, err = stringField(r, "prompt", src, false); err != nil {
				return err
			}
			if pc.Completion, err = stringField(r, "completion", src, true); err != nil {
				return err
			}
		case FormatConversationalPromptCompletion:
			if pc.PromptMessages, err = messagesField(r, "prompt", src); err != nil {
				return err
			}
			if pc.CompletionMessages, err = nonEmptyMessages(r, "completion", src); err != nil {
				return err
			}
		default:
			return wrongFormat(r, src, f, "prompt_completion", "prompt", "completion")
		}
		pc.Src = src
		out = append(out, pc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// Conversations returns conversational language-modeling examples
// ("messages", or ShareGPT "conversations" converted). A conversation must
// hold at least one message.
func (d *Dataset) Conversations() ([]Conversation, error) {
	v := d.startView("Conversations")
	var out []Conversation
	err := v.each(func(r Record, f Format, src Source) error {
		if f != FormatConversational {
			return wrongFormat(r, src, f, "conversational (messages)", "messages")
		}
		msgs, err := nonEmptyMessages(r, "messages", src)
		if err != nil {
			return err
		}
		out = append(out, Conversation{Messages: msgs, Src: src})
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// Preferences returns preference pairs: standard (strings), conversational
// (message lists) or ShareGPT preference records converted.
//
// Chosen and rejected must be non-empty. Without a "prompt" field the
// prompt is implicit and extracted: for strings with ExtractPrompt (the
// common prefix, cut after the last "\n\nAssistant:" in it), for message
// lists with ExtractPromptMessages (the common leading messages, as TRL's
// extract_prompt does). Pairs with chosen == rejected are kept and counted
// in Checked.IdenticalPairs. An optional numeric "margin" column fills
// Margin.
func (d *Dataset) Preferences() ([]Preference, error) {
	v := d.startView("Preferences")
	var out []Preference
	err := v.each(func(r Record, f Format, src Source) error {
		p := Preference{Src: src}
		_, hasPrompt := r["prompt"]
		switch f {
		case FormatPreference:
			c, err := stringField(r, "chosen", src, true)
			if err != nil {
				return err
			}
			rj, err := stringField(r, "rejected", src, true)
			if err != nil {
				return err
			}
			if hasPrompt {
				if p.Prompt, err = stringField(r, "prompt", src, false); err != nil {
					return err
				}
				p.Chosen, p.Rejected = c, rj
			} else {
				p.Prompt, p.Chosen, p.Rejected = ExtractPrompt(c, rj)
				if p.Chosen == "" {
					return recErr(src, "chosen", "empty string after extracting the prompt")
				}
				if p.Rejected == "" {
					return recErr(src, "rejected", "empty string after extracting the prompt")
				}
			}
			if c == rj {
				v.rep.IdenticalPairs++
			}
		case FormatConversationalPreference:
			c, err := nonEmptyMessages(r, "chosen", src)
			if err != nil {
				return err
			}
			rj, err := nonEmptyMessages(r, "rejected", src)
			if err != nil {
				return err
			}
			if hasPrompt {
				if p.PromptMessages, err = messagesField(r, "prompt", src); err != nil {
					return err
				}
				p.ChosenMessages, p.RejectedMessages = c, rj
			} else {
				p.PromptMessages, p.ChosenMessages, p.RejectedMessages = ExtractPromptMessages(c, rj)
				if len(p.ChosenMessages) == 0 || len(p.RejectedMessages) == 0 {
					// Identical conversations: nothing to compare after the prompt.
					p.PromptMessages, p.ChosenMessages, p.RejectedMessages = nil, c, rj
				}
			}
			if slices.Equal(c, rj) {
				v.rep.IdenticalPairs++
			}
		default:
			return wrongFormat(r, src, f, "preference (chosen, rejected)", "chosen", "rejected")
		}
		if m, ok := r["margin"]; ok && m != nil {
			x, err := numberField(r, "margin", src)
			if err != nil {
				return err
			}
			p.Margin = &x
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// UnpairedPreferences returns KTO examples: prompt, completion and a
// boolean label (true/false, or the numbers 1/0). A conversational record
// may instead hold "messages" plus "label": the last message (which must
// be from the assistant) is the completion, the ones before the prompt.
func (d *Dataset) UnpairedPreferences() ([]UnpairedPreference, error) {
	v := d.startView("UnpairedPreferences")
	var out []UnpairedPreference
	err := v.each(func(r Record, f Format, src Source) error {
		u := UnpairedPreference{Src: src}
		var err error
		switch f {
		case FormatUnpairedPreference:
			if u.Prompt, err = stringField(r, "prompt", src, false); err != nil {
				return err
			}
			if u.Completion, err = stringField(r, "completion", src, true); err != nil {
				return err
			}
		case FormatConversationalUnpairedPreference:
			if _, ok := r["messages"]; ok {
				msgs, err := nonEmptyMessages(r, "messages", src)
				if err != nil {
					return err
				}
				last := msgs[len(msgs)-1]
				if last.Role != "assistant" {
					return recErr(src, fmt.Sprintf("messages[%d].role", len(msgs)-1), "last message is from %q, want assistant", last.Role)
				}
				u.PromptMessages, u.CompletionMessages = msgs[:len(msgs)-1], msgs[len(msgs)-1:]
			} else {
				if u.PromptMessages, err = messagesField(r, "prompt", src); err != nil {
					return err
				}
				if u.CompletionMessages, err = nonEmptyMessages(r, "completion", src); err != nil {
					return err
				}
			}
		default:
			if _, ok := r["messages"]; ok {
				if _, ok := r["label"]; !ok {
					return recErr(src, "label", "missing (want true for a desirable completion, false for an undesirable one)")
				}
				if _, err := boolField(r, "label", src); err != nil { // a label that is no boolean
					return err
				}
			}
			return wrongFormat(r, src, f, "unpaired_preference (prompt, completion, label)", "prompt", "completion", "label")
		}
		if u.Label, err = boolField(r, "label", src); err != nil {
			return err
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}

// Classifications returns classification examples and the label names.
//
// The text is "text" or "sentence", or a pair (see FormatClassification). Labels:
// with a ClassLabel feature for "label" the numbers are ids into its names
// (returned); numbers, booleans (0/1) and strings holding integers (as CSV
// and TSV files give them) are ids as they are (names nil); other strings
// are mapped to ids in sorted order and the sorted strings returned as
// names. -1 marks an unlabeled example.
func (d *Dataset) Classifications() ([]Example, []string, error) {
	v := d.startView("Classifications")
	type pending struct {
		ex    Example
		label any
	}
	var rows []pending
	err := v.each(func(r Record, f Format, src Source) error {
		if f != FormatClassification {
			return wrongFormat(r, src, f, "classification (text, label)", "text", "label")
		}
		ex, lab, err := classificationExample(r, src, false)
		if err != nil {
			return err
		}
		rows = append(rows, pending{ex, lab})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	names := d.ClassNames("label")
	// Decide how string labels map: integers as they are, else sorted names.
	var strNames []string
	if names == nil {
		set := map[string]bool{}
		allInts := true
		for _, p := range rows {
			if s, ok := p.label.(string); ok {
				set[s] = true
				if _, err := strconv.Atoi(strings.TrimSpace(s)); err != nil {
					allInts = false
				}
			}
		}
		if len(set) > 0 && !allInts {
			for s := range set {
				strNames = append(strNames, s)
			}
			slices.Sort(strNames)
		}
	}
	out := make([]Example, 0, len(rows))
	for _, p := range rows {
		ex := p.ex
		var err error
		switch x := p.label.(type) {
		case float64:
			switch {
			case x != math.Trunc(x) || math.IsInf(x, 0):
				err = recErr(ex.Src, "label", "%v is not an integer", x)
			case math.Abs(x) > maxClasses:
				err = recErr(ex.Src, "label", "%g is too large for a class id (at most %d classes)", x, maxClasses)
			default:
				ex.Label = int(x)
			}
		case bool:
			if x {
				ex.Label = 1
			}
		case string:
			if strNames != nil {
				ex.Label, _ = slices.BinarySearch(strNames, x)
			} else if names != nil && slices.Contains(names, x) {
				ex.Label = slices.Index(names, x)
			} else if n, aerr := strconv.Atoi(strings.TrimSpace(x)); aerr == nil {
				ex.Label = n
				if n > maxClasses || n < -maxClasses {
					err = recErr(ex.Src, "label", "%d is too large for a class id (at most %d classes)", n, maxClasses)
				}
			} else {
				err = recErr(ex.Src, "label", "%q is not one of the class names", x)
			}
		}
		if err == nil && names != nil && (ex.Label < -1 || ex.Label >= len(names)) {
			err = recErr(ex.Src, "label", "%d out of range for %d class names", ex.Label, len(names))
		}
		if err == nil && ex.Label < -1 {
			err = recErr(ex.Src, "label", "negative label %d", ex.Label)
		}
		if err != nil {
			if err := v.fail(err); err != nil {
				return nil, nil, err
			}
			continue
		}
		out = append(out, ex)
	}
	v.done(len(out))
	if names == nil {
		names = strNames
	}
	return out, names, nil
}

// ExtractPrompt splits an implicit-prompt preference pair given as strings
// as TRL's extract_prompt (trl/data_utils.py) does: the prompt is the
// longest common prefix, less a space just before the first difference.
// Where one string is a prefix of the other TRL's loop ends without a
// break and the prompt is the shorter string less its last character;
// rl does the same.
func ExtractPrompt(chosen, rejected string) (prompt, chosenRest, rejectedRest string) {
	// trl/data_utils.py extract_prompt: the first character where the two
	// differ, one back when the character before it is a space; with no
	// difference within the shorter text, the loop ends on its last
	// character.
	n := 0
	for n < len(chosen) && n < len(rejected) && chosen[n] == rejected[n] {
		n++
	}
	for n > 0 && n < len(chosen) && !utf8.RuneStart(chosen[n]) {
		n--
	}
	if n == len(chosen) || n == len(rejected) {
		_, size := utf8.DecodeLastRuneInString(chosen[:n])
		n -= size
	} else if n > 0 && chosen[n-1] == ' ' {
		n--
	}
	return chosen[:n], chosen[n:], rejected[n:]
}

// ExtractPromptMessages splits an implicit-prompt conversational pair as
// TRL's extract_prompt does: the prompt is the longest run of identical
// leading messages, chosen and rejected the rest.
func ExtractPromptMessages(chosen, rejected []Message) (prompt, chosenRest, rejectedRest []Message) {
	n := 0
	for n < len(chosen) && n < len(rejected) && chosen[n] == rejected[n] {
		n++
	}
	return chosen[:n:n], chosen[n:], rejected[n:]
}

// stringField reads a string field: missing, non-string and invalid UTF-8
// are errors, and so is "" when nonEmpty.
func stringField(r Record, key string, src Source, nonEmpty bool) (string, error) {
	v, ok := r[key]
	if !ok {
		return "", recErr(src, key, "missing")
	}
	s, ok := v.(string)
	if !ok {
		return "", recErr(src, key, "want a string, got %s", jsonKind(v))
	}
	if msg := BadText(s); msg != "" {
		return "", recErr(src, key, "%s", msg)
	}
	if nonEmpty && s == "" {
		return "", recErr(src, key, "empty string")
	}
	return s, nil
}

func numberField(r Record, key string, src Source) (float64, error) {
	v, ok := r[key]
	if !ok {
		return 0, recErr(src, key, "missing")
	}
	x, ok := v.(float64)
	if !ok {
		return 0, recErr(src, key, "want a number, got %s", jsonKind(v))
	}
	return x, nil
}

func boolField(r Record, key string, src Source) (bool, error) {
	v, ok := r[key]
	if !ok {
		return false, recErr(src, key, "missing")
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
		return false, recErr(src, key, "want a boolean, got %v", x)
	}
	return false, recErr(src, key, "want a boolean, got %s", jsonKind(v))
}

// messagesField reads a list of {role, content} messages. Content may be a
// string, null (""), or a list of parts whose "text" parts are joined.
func messagesField(r Record, key string, src Source) ([]Message, error) {
	v, ok := r[key]
	if !ok {
		return nil, recErr(src, key, "missing")
	}
	l, ok := v.([]any)
	if !ok {
		return nil, recErr(src, key, "want a list of messages, got %s", jsonKind(v))
	}
	out := make([]Message, 0, len(l))
	for i, e := range l {
		field := fmt.Sprintf("%s[%d]", key, i)
		m, ok := e.(map[string]any)
		if !ok {
			return nil, recErr(src, field, "want a {role, content} object, got %s", jsonKind(e))
		}
		role, ok := m["role"].(string)
		if !ok {
			if _, has := m["role"]; !has {
				return nil, recErr(src, field+".role", "missing")
			}
			return nil, recErr(src, field+".role", "want a string, got %s", jsonKind(m["role"]))
		}
		if role == "" {
			return nil, recErr(src, field+".role", "empty string")
		}
		content, err := messageContent(m["content"], src, field+".content")
		if err != nil {
			return nil, err
		}
		if msg := BadText(role); msg != "" {
			return nil, recErr(src, field+".role", "%s", msg)
		}
		out = append(out, Message{Role: role, Content: content})
	}
	return out, nil
}

func messageContent(v any, src Source, field string) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		if msg := BadText(x); msg != "" {
			return "", recErr(src, field, "%s", msg)
		}
		return x, nil
	case []any:
		var sb strings.Builder
		for _, part := range x {
			p, ok := part.(map[string]any)
			if !ok {
				return "", recErr(src, field, "want content parts as objects, got %s", jsonKind(part))
			}
			if t, _ := p["type"].(string); t == "text" {
				s, ok := p["text"].(string)
				if !ok {
					return "", recErr(src, field, "text part without a string \"text\"")
				}
				sb.WriteString(s)
			}
		}
		if msg := BadText(sb.String()); msg != "" {
			return "", recErr(src, field, "%s", msg)
		}
		return sb.String(), nil
	}
	return "", recErr(src, field, "want a string, got %s", jsonKind(v))
}

// nonEmptyMessages is messagesField requiring at least one message and a
// non-empty last message.
func nonEmptyMessages(r Record, key string, src Source) ([]Message, error) {
	msgs, err := messagesField(r, key, src)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, recErr(src, key, "empty message list")
	}
	if msgs[len(msgs)-1].Content == "" {
		return nil, recErr(src, fmt.Sprintf("%s[%d].content", key, len(msgs)-1), "empty string")
	}
	return msgs, nil
}

// maxClasses bounds integer class ids, so that 1e300 is reported as too
// large rather than converted into a negative int.
const maxClasses = 1 << 24

// BadText says what is wrong with a text field, or "": invalid UTF-8 (JSON
// readers refuse it before decoding, which would replace it with U+FFFD), or
// a NUL byte, which no tokenizer text should hold (and which the chat
// template renderer uses as a sentinel).
func BadText(s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("contains a NUL byte (\\u0000) at byte %d", i)
	}
	return ""
}

// classificationExample reads the text (and text pair) of a classification
// record and its label, checked to be a number, a boolean or a non-empty
// string (or, with lists, a list of those: multi-label data).
func classificationExample(r Record, src Source, lists bool) (Example, any, error) {
	key := classificationText(r)
	var ex Example
	var err error
	if ex.Text, err = stringField(r, key, src, true); err != nil {
		return ex, nil, err
	}
	for _, p := range textPairKeys {
		if p[0] == key {
			if _, ok := r[p[1]]; ok {
				if ex.TextPair, err = stringField(r, p[1], src, true); err != nil {
					return ex, nil, err
				}
			}
			break
		}
	}
	ex.Src = src
	lab, ok := r["label"]
	if !ok {
		return ex, nil, recErr(src, "label", "missing")
	}
	check := func(lab any) error {
		switch x := lab.(type) {
		case float64, bool:
		case string:
			if msg := BadText(x); msg != "" {
				return recErr(src, "label", "%s", msg)
			}
			if strings.TrimSpace(x) == "" {
				return recErr(src, "label", "empty string")
			}
		default:
			want := "a number, boolean or string"
			if lists {
				want += " (or a list of them)"
			}
			return recErr(src, "label", "want %s, got %s", want, jsonKind(lab))
		}
		return nil
	}
	if l, ok := lab.([]any); ok && lists {
		for _, v := range l {
			if err := check(v); err != nil {
				return ex, nil, err
			}
		}
		return ex, lab, nil
	}
	return ex, lab, check(lab)
}

// Target is a classification example whose label is a value rather than a
// class id: Values for a number, a boolean (0/1) or a list of numbers (a
// multi-hot vector), Names for a string or a list of strings (the names of
// the labels that apply). List is set when the label was a list.
type Target struct {
	Example
	Values []float64
	Names  []string
	List   bool
}

// Targets returns the examples of a classification dataset with their raw
// label values, for regression (a float score, GLUE STS-B) and
// multi-label classification (a list of label names or a 0/1 vector).
// A record whose label is of no such kind is an error naming file:line;
// a list may not mix names and numbers.
func (d *Dataset) Targets() ([]Target, error) {
	v := d.startView("Targets")
	var out []Target
	err := v.each(func(r Record, f Format, src Source) error {
		if f != FormatClassification {
			return wrongFormat(r, src, f, "classification (text, label)", "text", "label")
		}
		ex, lab, err := classificationExample(r, src, true)
		if err != nil {
			return err
		}
		t := Target{Example: ex}
		items, list := lab.([]any)
		if !list {
			items = []any{lab}
		}
		t.List = list
		for _, it := range items {
			switch x := it.(type) {
			case float64:
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return recErr(src, "label", "%v is not a finite number", x)
				}
				t.Values = append(t.Values, x)
			case bool:
				t.Values = append(t.Values, map[bool]float64{true: 1}[x])
			case string:
				if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !list {
					t.Values = append(t.Values, f)
				} else {
					t.Names = append(t.Names, x)
				}
			}
		}
		if t.Values != nil && t.Names != nil {
			return recErr(src, "label", "a list of label names or of 0/1 values, not both")
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.done(len(out))
	return out, nil
}
