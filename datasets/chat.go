package datasets

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/ardanlabs/jinja"
)

// DefaultChatTemplate is ChatML, the template to use when a tokenizer
// ships none: every message is "<|im_start|>{role}\n{content}<|im_end|>\n"
// and the generation prompt is "<|im_start|>assistant\n".
const DefaultChatTemplate = "{% for message in messages %}" +
	"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// ChatTemplate is a compiled Jinja chat template (as found in a tokenizer's
// tokenizer_config.json "chat_template"). It is rendered the way
// transformers does: Jinja2 with trim_blocks and lstrip_blocks on and
// keep_trailing_newline off, with raise_exception, strftime_now,
// namespace, tojson, loop controls and Python string/dict methods
// (.strip(), .split(), .items(), ...) available.
//
// Rendering is done by github.com/ardanlabs/jinja, a Go Jinja engine built
// for Hugging Face/GGUF chat templates. Whitespace control is resolved by
// this package before compiling (see resolveWhitespace), because the
// engine applies trim_blocks/lstrip_blocks to text that does not touch the
// tag when tags stand next to each other, where Jinja2 does not. Safe for
// concurrent use.
type ChatTemplate struct {
	src  string
	tmpl *jinja.Template
	// marked is the template with {% generation %} blocks turned into
	// sentinel output, nil when the template has none.
	marked *jinja.Template
}

var templateCache sync.Map // source -> *ChatTemplate

// CompileChatTemplate compiles src ("" selects DefaultChatTemplate).
func CompileChatTemplate(src string) (*ChatTemplate, error) {
	if src == "" {
		src = DefaultChatTemplate
	}
	if t, ok := templateCache.Load(src); ok {
		return t.(*ChatTemplate), nil
	}
	tmpl, err := jinja.Compile(resolveWhitespace(src))
	if err != nil {
		return nil, fmt.Errorf("datasets: chat template: %w", err)
	}
	ct := &ChatTemplate{src: src, tmpl: tmpl}
	if generationTag.MatchString(src) {
		m, err := jinja.Compile(resolveWhitespace(markGeneration(src)))
		if err != nil {
			return nil, fmt.Errorf("datasets: chat template (generation markers): %w", err)
		}
		ct.marked = m
	}
	templateCache.Store(src, ct)
	return ct, nil
}

// Source returns the template text.
func (t *ChatTemplate) Source() string { return t.src }

// HasGenerationMarkers reports whether the template has TRL/transformers
// {% generation %} ... {% endgeneration %} blocks around assistant output.
func (t *ChatTemplate) HasGenerationMarkers() bool { return t.marked != nil }

// ApplyChatTemplate renders messages with a Jinja chat template ("" selects
// DefaultChatTemplate). addGenerationPrompt sets the template's
// add_generation_prompt; special supplies bos_token, eos_token and any
// other variables (all as strings). A raise_exception in the template is
// returned as an error.
func ApplyChatTemplate(template string, messages []Message, addGenerationPrompt bool, special map[string]string) (string, error) {
	t, err := CompileChatTemplate(template)
	if err != nil {
		return "", err
	}
	return t.Apply(messages, addGenerationPrompt, special)
}

// Apply renders messages; see ApplyChatTemplate.
func (t *ChatTemplate) Apply(messages []Message, addGenerationPrompt bool, special map[string]string) (string, error) {
	return t.render(t.tmpl, messages, addGenerationPrompt, special, nil)
}

// Render renders the template with messages plus extra variables (e.g.
// tools, documents, enable_thinking) given as JSON-like values; integral
// float64 values are passed as integers, as Python's json would load them.
func (t *ChatTemplate) Render(messages []Message, addGenerationPrompt bool, special map[string]string, extra map[string]any) (string, error) {
	return t.render(t.tmpl, messages, addGenerationPrompt, special, extra)
}

func (t *ChatTemplate) render(tmpl *jinja.Template, messages []Message, addGen bool, special map[string]string, extra map[string]any) (string, error) {
	data := make(map[string]any, len(special)+len(extra)+4)
	// transformers always defines these; templates test them.
	data["bos_token"] = ""
	data["eos_token"] = ""
	for k, v := range extra {
		data[k] = jinjaValue(v)
	}
	for k, v := range special {
		data[k] = v
	}
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data["messages"] = msgs
	data["add_generation_prompt"] = addGen
	out, err := tmpl.Render(data)
	if err != nil {
		return "", fmt.Errorf("datasets: chat template: %w", err)
	}
	return out, nil
}

func jinjaValue(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jinjaValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jinjaValue(e)
		}
		return out
	case Record:
		return jinjaValue(map[string]any(x))
	case []Message:
		out := make([]any, len(x))
		for i, m := range x {
			out[i] = map[string]any{"role": m.Role, "content": m.Content}
		}
		return out
	}
	return v
}

// Span is a byte range [Start, End) of a rendered conversation.
type Span struct {
	// Message is the index of the message the span belongs to, or -1 when
	// it cannot be told (generation markers not matching the assistant
	// messages one to one).
	Message    int
	Start, End int
}

// AssistantSpans renders a whole conversation (without generation prompt)
// and returns the byte spans of the assistant turns in it, for
// assistant-only loss: tokens whose characters fall in a span are trained,
// the rest masked. See ChatTemplate.AssistantSpans for the method.
func AssistantSpans(template string, messages []Message, special map[string]string) (string, []Span, error) {
	t, err := CompileChatTemplate(template)
	if err != nil {
		return "", nil, err
	}
	return t.AssistantSpans(messages, special)
}

// AssistantSpans returns the rendered conversation and the byte spans of
// its assistant turns.
//
// With {% generation %} markers (what TRL's training templates and
// transformers' return_assistant_tokens_mask use) the spans are exactly
// the marked output: the blocks are rewritten to emit sentinels, whose
// positions are the spans, and are then removed.
//
// Without markers the spans come from rendering prefixes: for assistant
// message i the span starts at the end of messages[:i] rendered with the
// generation prompt and ends at the end of messages[:i+1] rendered without
// it, so it covers everything the turn adds after the generation prompt,
// end-of-turn tokens included (e.g. "Hello!<|im_end|>\n" for ChatML,
// " Hello! </s>" for Llama-2). This needs a prefix-stable template (a
// rendered prefix is a prefix of the full rendering), which holds for
// ChatML, Llama-2, Zephyr and most templates. Where it does not (templates
// that rewrite earlier turns, e.g. dropping old reasoning) each span is
// found by substitution instead: the conversation is rendered again with
// that message's content replaced by a sentinel, and the span is the part
// of the full text between the common prefix and the common suffix of the
// two renderings. That is the content as rendered (stripped, reasoning
// removed, ...) without the end-of-turn tokens.
func (t *ChatTemplate) AssistantSpans(messages []Message, special map[string]string) (string, []Span, error) {
	if t.marked != nil {
		return t.markedSpans(messages, special)
	}
	full, err := t.Apply(messages, false, special)
	if err != nil {
		return "", nil, err
	}
	spans, ok := t.prefixSpans(messages, special, full)
	if ok {
		return full, spans, nil
	}
	spans, err = t.substitutionSpans(messages, special, full)
	if err != nil {
		return "", nil, err
	}
	return full, spans, nil
}

func (t *ChatTemplate) prefixSpans(messages []Message, special map[string]string, full string) ([]Span, bool) {
	var spans []Span
	for i, m := range messages {
		if m.Role != "assistant" {
			continue
		}
		start := 0
		if i > 0 {
			pre, err := t.Apply(messages[:i], true, special)
			if err != nil || !strings.HasPrefix(full, pre) {
				// Some templates add nothing, or something else, as the
				// generation prompt; fall back to the plain prefix.
				pre, err = t.Apply(messages[:i], false, special)
				if err != nil || !strings.HasPrefix(full, pre) {
					return nil, false
				}
			}
			start = len(pre)
		}
		upto, err := t.Apply(messages[:i+1], false, special)
		if err != nil || !strings.HasPrefix(full, upto) || len(upto) < start {
			return nil, false
		}
		spans = append(spans, Span{Message: i, Start: start, End: len(upto)})
	}
	return spans, true
}

// substitutionSpans finds each assistant turn's span by rendering the
// conversation again with that message's content replaced by a sentinel:
// the text before the first and after the last difference from the full
// rendering is independent of the content, so what lies between is the
// content as the template renders it. The sentinel starts and ends with
// NUL so the common prefix and suffix cannot run into the content.
func (t *ChatTemplate) substitutionSpans(messages []Message, special map[string]string, full string) ([]Span, error) {
	const sentinel = "\x00rlsuite-assistant-content\x00"
	var spans []Span
	alt := slices.Clone(messages)
	for i, m := range messages {
		if m.Role != "assistant" {
			continue
		}
		alt[i].Content = sentinel
		other, err := t.Apply(alt, false, special)
		alt[i].Content = m.Content
		if err != nil {
			return nil, fmt.Errorf("datasets: chat template: assistant message %d: %w", i, err)
		}
		a := 0
		for a < len(full) && a < len(other) && full[a] == other[a] {
			a++
		}
		b := 0
		for b < len(full)-a && b < len(other)-a && full[len(full)-1-b] == other[len(other)-1-b] {
			b++
		}
		if a < len(full)-b {
			spans = append(spans, Span{Message: i, Start: a, End: len(full) - b})
		}
	}
	return spans, nil
}

// Sentinels emitted around {% generation %} output. They are passed as
// template variables, so they need no quoting inside the template.
const (
	genOpen  = "\x00\x02rlsuite-gen\x02\x00"
	genClose = "\x00\x03rlsuite-gen\x03\x00"
)

var generationTag = regexp.MustCompile(`\{%([-+]?)\s*(end)?generation\s*([-+]?)%\}`)

// markGeneration rewrites {% generation %} / {% endgeneration %} into
// output of the sentinels. Each tag becomes "{%L if true %}{{ sentinel
// }}{% endif R%}", which keeps the tag's whitespace behaviour: lstrip_blocks
// and an explicit "-" still act on the text before, trim_blocks and "-" on
// the text after.
func markGeneration(src string) string {
	return generationTag.ReplaceAllStringFunc(src, func(tag string) string {
		m := generationTag.FindStringSubmatch(tag)
		v := "rlsuite_gen_open"
		if m[2] != "" {
			v = "rlsuite_gen_close"
		}
		return "{%" + m[1] + " if true %}{{ " + v + " }}{% endif " + m[3] + "%}"
	})
}

func (t *ChatTemplate) markedSpans(messages []Message, special map[string]string) (string, []Span, error) {
	raw, err := t.render(t.marked, messages, false, special, map[string]any{
		"rlsuite_gen_open": genOpen, "rlsuite_gen_close": genClose,
	})
	if err != nil {
		return "", nil, err
	}
	var sb strings.Builder
	var spans []Span
	open := -1
	for len(raw) > 0 {
		i := strings.IndexByte(raw, 0)
		if i < 0 {
			sb.WriteString(raw)
			break
		}
		switch {
		case strings.HasPrefix(raw[i:], genOpen):
			sb.WriteString(raw[:i])
			if open >= 0 {
				return "", nil, fmt.Errorf("datasets: chat template: nested {%% generation %%} blocks")
			}
			open = sb.Len()
			raw = raw[i+len(genOpen):]
		case strings.HasPrefix(raw[i:], genClose):
			sb.WriteString(raw[:i])
			if open < 0 {
				return "", nil, fmt.Errorf("datasets: chat template: {%% endgeneration %%} without {%% generation %%}")
			}
			spans = append(spans, Span{Message: -1, Start: open, End: sb.Len()})
			open = -1
			raw = raw[i+len(genClose):]
		default:
			sb.WriteString(raw[:i+1])
			raw = raw[i+1:]
		}
	}
	var assistants []int
	for i, m := range messages {
		if m.Role == "assistant" {
			assistants = append(assistants, i)
		}
	}
	if len(assistants) == len(spans) {
		for k := range spans {
			spans[k].Message = assistants[k]
		}
	}
	return sb.String(), spans, nil
}

// resolveWhitespace applies Jinja2's whitespace rules (as transformers
// configures them: trim_blocks, lstrip_blocks, keep_trailing_newline off;
// "-" and "+" markers; newlines normalised to "\n") to the template text
// itself, and rewrites every text run as a string-literal expression
// ({{ '...' }}) and every tag without its markers. The engine then sees no
// literal text, so its own trimming has nothing to act on, and the output
// is what Jinja2 renders. Newlines removed by trimming are kept inside the
// expression tags, so line numbers in error messages stay right. An
// unterminated tag is left for the engine to report.
func resolveWhitespace(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	src = strings.TrimSuffix(src, "\n")
	var out strings.Builder
	emitText := func(text string, dropped int) {
		if text == "" && dropped == 0 {
			return
		}
		out.WriteString("{{ '")
		for i := 0; i < len(text); i++ {
			if c := text[i]; c == '\\' || c == '\'' {
				out.WriteByte('\\')
			}
			out.WriteByte(text[i])
		}
		out.WriteString("'")
		out.WriteString(strings.Repeat("\n", dropped))
		out.WriteString(" }}")
	}
	pos := 0
	lineStarting := true
	pending := "" // text consumed by the previous tag's right trim: dropped
	for {
		k := nextTagOpen(src, pos)
		if k < 0 {
			emitText(src[pos:], strings.Count(pending, "\n"))
			return out.String()
		}
		text := src[pos:k]
		kind := src[k+1]
		closer := "}}"
		switch kind {
		case '%':
			closer = "%}"
		case '#':
			closer = "#}"
		}
		i := k + 2
		left := byte(0)
		if i < len(src) && (src[i] == '-' || src[i] == '+') {
			left = src[i]
			i++
		}
		contentStart := i
		end, contentEnd, right := findTagClose(src, i, closer, kind == '#')
		if end < 0 {
			// Unterminated: hand the rest over unchanged.
			emitText(text, strings.Count(pending, "\n"))
			out.WriteString(src[k:])
			return out.String()
		}
		block := kind != '{'
		full := text
		switch {
		case left == '-':
			text = strings.TrimRightFunc(text, isPySpace)
		case left != '+' && block:
			lpos := strings.LastIndexByte(text, '\n') + 1
			if (lpos > 0 || lineStarting) && strings.Trim(text[lpos:], " \t") == "" {
				text = text[:lpos]
			}
		}
		emitText(text, strings.Count(pending, "\n")+strings.Count(full[len(text):], "\n"))
		out.WriteString(src[k : k+2])
		out.WriteString(src[contentStart:contentEnd])
		out.WriteString(closer)
		pos = end
		consumed := ""
		switch {
		case right == '-':
			rest := strings.TrimLeftFunc(src[pos:], isPySpace)
			consumed = src[pos : len(src)-len(rest)]
		case right != '+' && block && strings.HasPrefix(src[pos:], "\n"):
			consumed = "\n"
		}
		pos += len(consumed)
		pending = consumed
		lineStarting = strings.HasSuffix(consumed, "\n")
	}
}

// nextTagOpen returns the index of the next "{{", "{%" or "{#" at or after
// from, or -1.
func nextTagOpen(src string, from int) int {
	for i := from; i+1 < len(src); i++ {
		if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
			return i
		}
	}
	return -1
}

// findTagClose finds closer from i, skipping quoted strings except in
// comments. It returns the index after the closer, the end of the tag
// content (before any "-" or "+" marker) and the marker (0 if none); end
// is -1 when the tag is not closed.
func findTagClose(src string, i int, closer string, comment bool) (end, contentEnd int, marker byte) {
	for i < len(src) {
		c := src[i]
		if !comment && (c == '\'' || c == '"') {
			i++
			for i < len(src) && src[i] != c {
				if src[i] == '\\' && i+1 < len(src) {
					i++
				}
				i++
			}
			i++
			continue
		}
		if (c == '-' || (c == '+' && closer != "}}")) && strings.HasPrefix(src[i+1:], closer) {
			return i + 1 + len(closer), i, c
		}
		if strings.HasPrefix(src[i:], closer) {
			return i + len(closer), i, 0
		}
		i++
	}
	return -1, -1, 0
}

// isPySpace is Python's str.isspace for one rune.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
