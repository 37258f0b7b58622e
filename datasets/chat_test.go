package datasets

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// llama2Template is the Llama-2 chat template as shipped in Hugging Face
// tokenizer_config.json files (hf-internal-testing/llama-tokenizer).
const llama2Template = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif USE_DEFAULT_PROMPT == true and not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set system_message = 'DEFAULT_SYSTEM_MESSAGE' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

// zephyrTemplate is HuggingFaceH4/zephyr-7b-beta's template; its output
// depends on trim_blocks (the newline after each block tag is dropped).
const zephyrTemplate = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

// qwenTemplate is Qwen2.5-Instruct's template without the tools branch.
const qwenTemplate = `{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`

// thinkingTemplate is a reduced Qwen3 template: reasoning of assistant
// turns before the last user query is dropped (not prefix-stable).
const thinkingTemplate = `{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not message.content.startswith('<tool_response>') %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content %}
    {%- if message.role == "assistant" %}
        {%- set reasoning = '' %}
        {%- if '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and reasoning %}
            {{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content + '<|im_end|>\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}`

// generationTemplate is ChatML with TRL-style {% generation %} markers.
const generationTemplate = `{%- for message in messages %}
    {%- if message['role'] == 'assistant' %}
        {{- '<|im_start|>assistant\n' }}
        {%- generation %}
        {{- message['content'] + '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\n' }}
    {%- else %}
        {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}`

var (
	sysMsg   = Message{"system", "Be brief."}
	userHi   = Message{"user", "Hi"}
	asstHi   = Message{"assistant", "Hello!"}
	userBye  = Message{"user", "Bye"}
	asstBye  = Message{"assistant", "Ciao"}
	llamaTok = map[string]string{"bos_token": "<s>", "eos_token": "</s>"}
)

func TestApplyChatTemplate(t *testing.T) {
	tests := []struct {
		name     string
		template string
		msgs     []Message
		addGen   bool
		special  map[string]string
		want     string
	}{
		{"chatml default", "", []Message{sysMsg, userHi, asstHi}, false, nil,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"},
		{"chatml generation prompt", DefaultChatTemplate, []Message{userHi}, true, nil,
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen default system", qwenTemplate, []Message{userHi, asstHi}, false, nil,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"},
		{"qwen system, tool turn, generation prompt", qwenTemplate, []Message{sysMsg, userHi, {"tool", "42"}}, true, nil,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n<|im_start|>assistant\n"},
		{"llama-2 with system and strip", llama2Template, []Message{sysMsg, {"user", " Hi there "}, {"assistant", " Hello! "}, userBye}, false, llamaTok,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]"},
		{"llama-2 without system", llama2Template, []Message{userHi, asstHi}, false, llamaTok,
			"<s>[INST] Hi [/INST] Hello! </s>"},
		{"zephyr trim_blocks and loop.last", zephyrTemplate, []Message{sysMsg, userHi, asstHi, userBye}, true, llamaTok,
			"<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n"},
		{"zephyr no generation prompt", zephyrTemplate, []Message{userHi}, false, llamaTok,
			"<|user|>\nHi</s>\n"},
		{"thinking template drops old reasoning", thinkingTemplate,
			[]Message{{"user", "Q1"}, {"assistant", "<think>\nr1\n</think>\n\nA1"}, {"user", "Q2"}, {"assistant", "<think>\nr2\n</think>\n\nA2"}}, false, nil,
			"<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\nA2<|im_end|>\n"},
		{"generation markers render as nothing", generationTemplate, []Message{userHi, asstHi}, true, nil,
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyChatTemplate(tt.template, tt.msgs, tt.addGen, tt.special)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestChatTemplateRaiseException(t *testing.T) {
	_, err := ApplyChatTemplate(llama2Template, []Message{userHi, userBye}, false, llamaTok)
	if err == nil || !strings.Contains(err.Error(), "Conversation roles must alternate user/assistant/user/assistant/...") {
		t.Errorf("got %v", err)
	}
	if _, err := CompileChatTemplate("{% if %}"); err == nil {
		t.Error("bad template: got no error")
	}
}

func TestLlamaTokenizerTemplateReal(t *testing.T) {
	path := sharedData(t, "llama-tokenizer-hf-internal-testing/tokenizer_config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
		Bos          string `json:"bos_token"`
		Eos          string `json:"eos_token"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	special := map[string]string{"bos_token": cfg.Bos, "eos_token": cfg.Eos}
	got, err := ApplyChatTemplate(cfg.ChatTemplate, []Message{sysMsg, userHi, asstHi, userBye}, true, special)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAssistantSpans(t *testing.T) {
	tests := []struct {
		name      string
		template  string
		msgs      []Message
		special   map[string]string
		wantSpans []string
		wantMsgs  []int
	}{
		{"chatml by prefixes", "", []Message{sysMsg, userHi, asstHi, userBye, asstBye}, nil,
			[]string{"Hello!<|im_end|>\n", "Ciao<|im_end|>\n"}, []int{2, 4}},
		{"llama-2 by prefixes", llama2Template, []Message{userHi, asstHi, userBye, asstBye}, llamaTok,
			[]string{" Hello! </s>", " Ciao </s>"}, []int{1, 3}},
		{"zephyr by prefixes", zephyrTemplate, []Message{userHi, asstHi}, llamaTok,
			[]string{"Hello!</s>\n"}, []int{1}},
		{"generation markers", generationTemplate, []Message{sysMsg, userHi, asstHi, userBye, asstBye}, nil,
			[]string{"Hello!<|im_end|>", "Ciao<|im_end|>"}, []int{2, 4}},
		{"not prefix-stable: by substitution", thinkingTemplate,
			[]Message{{"user", "Q1"}, {"assistant", "<think>\nr1\n</think>\n\nA1"}, {"user", "Q2"}, {"assistant", "<think>\nr2\n</think>\n\nA2"}}, nil,
			[]string{"A1", "<think>\nr2\n</think>\n\nA2"}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, spans, err := AssistantSpans(tt.template, tt.msgs, tt.special)
			if err != nil {
				t.Fatal(err)
			}
			full, err := ApplyChatTemplate(tt.template, tt.msgs, false, tt.special)
			if err != nil {
				t.Fatal(err)
			}
			if text != full {
				t.Errorf("text: got %q, want the plain rendering %q", text, full)
			}
			var got []string
			var gotMsgs []int
			for _, s := range spans {
				got = append(got, text[s.Start:s.End])
				gotMsgs = append(gotMsgs, s.Message)
			}
			if strings.Join(got, "|") != strings.Join(tt.wantSpans, "|") || len(got) != len(tt.wantSpans) {
				t.Errorf("spans: got %q, want %q", got, tt.wantSpans)
			}
			if len(gotMsgs) != len(tt.wantMsgs) {
				t.Fatalf("messages: got %v, want %v", gotMsgs, tt.wantMsgs)
			}
			for i := range gotMsgs {
				if gotMsgs[i] != tt.wantMsgs[i] {
					t.Errorf("messages: got %v, want %v", gotMsgs, tt.wantMsgs)
					break
				}
			}
		})
	}
}

// TestGenerationTagWhitespace checks that rewriting {% generation %} for
// span tracking keeps the tag's whitespace behaviour (trim_blocks,
// lstrip_blocks and "-" markers).
func TestGenerationTagWhitespace(t *testing.T) {
	templates := []string{
		"{% for m in messages %}{{ m.role }}: {% if m.role == 'assistant' %}{% generation %}\n{{ m.content }}{% endgeneration %}\n{% else %}{{ m.content }}\n{% endif %}{% endfor %}",
		"{% for m in messages %}\n  {% if m.role == 'assistant' %}\n    {% generation %}\n[{{ m.content }}]\n    {% endgeneration %}\n  {% else %}\n({{ m.content }})\n  {% endif %}\n{% endfor %}",
		"{% for m in messages %}  {%- generation -%}  \n {{ m.content }}  {%- endgeneration %}  |{% endfor %}",
	}
	for i, src := range templates {
		ct, err := CompileChatTemplate(src)
		if err != nil {
			t.Fatal(err)
		}
		if !ct.HasGenerationMarkers() {
			t.Fatalf("template %d: markers not found", i)
		}
		plain, err := ct.Apply([]Message{userHi, asstHi}, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		text, spans, err := ct.AssistantSpans([]Message{userHi, asstHi}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if text != plain {
			t.Errorf("template %d: marked rendering %q differs from plain %q", i, text, plain)
		}
		if len(spans) == 0 || !strings.Contains(text[spans[len(spans)-1].Start:spans[len(spans)-1].End], "Hello!") {
			t.Errorf("template %d: spans %v of %q miss the assistant text", i, spans, text)
		}
	}
}

// TestJinjaWhitespace pins whitespace handling to Jinja2's (3.1.6 with
// trim_blocks, lstrip_blocks, as transformers renders chat templates); the
// wanted strings were rendered by Jinja2 itself, for [user "Hi", assistant
// "Hello!"] with the generation prompt on.
func TestJinjaWhitespace(t *testing.T) {
	tests := []struct{ name, template, want string }{
		{"expression then newline after a block tag", "{% for m in messages %}{{ m.content }}\n{% endfor %}", "Hi\nHello!\n"},
		{"trim_blocks trims one newline only", "{% if true %}{% endif %}\n\nfoo{% for m in messages %}x{% endfor %}", "\nfooxx"},
		{"minus trims only touching text", "  text  {% if true %}{{- 'x' }}{% endif %}", "  text  x"},
		{"lstrip only at line start, trailing newline dropped", "\n    {{ 'a' }}{% if true %}b{% endif %}\n   {# c #}{{ 'd' }}\n", "\n    abd"},
		{"newline inside if trimmed", "{% for m in messages %}{{ m.role }}{% if not loop.last %}\n{% endif %}{% endfor %}", "userassistant"},
		{"plus markers keep whitespace", "{% for m in messages %}\n    {%+ if true +%}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}", "    \n[Hi]\n    \n[Hello!]\n"},
		{"alpaca-style literal text", "{% for m in messages %}{% if m.role == 'user' %}### Instruction:\n{{ m.content }}\n\n{% elif m.role == 'assistant' %}### Response:\n{{ m.content }}{{ eos_token }}\n\n{% endif %}{% endfor %}{% if add_generation_prompt %}### Response:\n{% endif %}\n\n",
			"### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n### Response:\n"},
		{"CRLF normalised", "{% for m in messages %}\r\n{{ m.content }}\r\n{% endfor %}\r\n", "Hi\nHello!\n"},
		{"quotes and backslashes in text", "{% for m in messages %}'{{ m.content }}' \\n {% endfor %}", "'Hi' \\n 'Hello!' \\n "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyChatTemplate(tt.template, []Message{userHi, asstHi}, true, llamaTok)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
