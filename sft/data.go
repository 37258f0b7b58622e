package sft

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/rs/zerolog"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/metrics"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Example is one tokenised example: Loss[i] says whether token i is a
// training target (its label is IDs[i]; otherwise -100).
type Example struct {
	IDs  []int32
	Loss []bool
}

// Encoder turns records into Examples with a tokenizer and the SFT
// settings, as TRL's SFTTrainer tokenises (trl/trainer/sft_trainer.py,
// _prepare_dataset: add_eos, tokenize_fn, build_labels, truncate): the eos
// text is appended to plain text and completions; a prompt and its
// completion are tokenised together, the prompt's tokens alone only to
// find where the completion starts; chat templates are rendered and
// tokenised without the tokenizer's special tokens (apply_chat_template
// with tokenize=True), their own end-of-turn tokens included.
type Encoder struct {
	Tok               *tokenizer.Tokenizer
	MaxLength         int
	TruncationMode    string // keep_start (default) or keep_end
	CompletionOnly    bool
	AssistantOnlyLoss bool
	TextField         string
	EOS               int // appended to plain text and completions; -1 for none

	// Mismatches counts prompt-completion examples whose prompt tokens are
	// not the start of the prompt+completion tokens (TRL warns of each).
	Mismatches int
}

func (e *Encoder) encode(text string, special bool) ([]int32, error) {
	return toInt32(e.Tok.Encode(text, special))
}

// toInt32 converts a tokenizer's ids.
func toInt32(ids []int, err error) ([]int32, error) {
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out, nil
}

// withEOS encodes text + the eos text (tokenizer.EncodeWithEOS).
func (e *Encoder) withEOS(text string, special bool) ([]int32, error) {
	return toInt32(e.Tok.EncodeWithEOS(text, e.EOS, special))
}

// all returns n copies of v.
func all(n int, v bool) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Text encodes language-modelling text: every token is a target.
func (e *Encoder) Text(text string) (Example, error) {
	ids, err := e.withEOS(text, true)
	if err != nil {
		return Example{}, err
	}
	return Example{IDs: ids, Loss: all(len(ids), true)}, nil
}

// PromptCompletion encodes prompt + completion + eos together; with
// CompletionOnly the first len(tokens(prompt)) tokens are not targets.
func (e *Encoder) PromptCompletion(prompt, completion string) (Example, error) {
	p, err := e.encode(prompt, true)
	if err != nil {
		return Example{}, err
	}
	full, err := e.withEOS(prompt+completion, true)
	if err != nil {
		return Example{}, err
	}
	return e.split(p, full), nil
}

// split marks the tokens of full past the prompt's length as completion.
func (e *Encoder) split(prompt, full []int32) Example {
	if len(full) < len(prompt) || !slices.Equal(full[:len(prompt)], prompt) {
		e.Mismatches++
	}
	x := Example{IDs: full, Loss: all(len(full), true)}
	if e.CompletionOnly {
		for i := range min(len(prompt), len(full)) {
			x.Loss[i] = false
		}
	}
	return x
}

// Conversation renders messages with the chat template and tokenises the
// whole text once; with AssistantOnlyLoss only the tokens of assistant
// turns are targets: a token is in a turn when any of its characters is,
// as transformers maps assistant character spans to tokens
// (char_to_token of the span's first and last character).
func (e *Encoder) Conversation(msgs []datasets.Message) (Example, error) {
	tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
	if err != nil {
		return Example{}, err
	}
	text, spans, err := tmpl.AssistantSpans(msgs, e.Tok.TemplateSpecials())
	if err != nil {
		return Example{}, err
	}
	ids, err := e.encode(text, false)
	if err != nil {
		return Example{}, err
	}
	x := Example{IDs: ids, Loss: all(len(ids), !e.AssistantOnlyLoss)}
	if !e.AssistantOnlyLoss {
		return x, nil
	}
	for _, s := range spans {
		if s.End <= s.Start {
			continue
		}
		from, _, err := e.boundary(text, ids, s.Start)
		if err != nil {
			return Example{}, err
		}
		to, straddle, err := e.boundary(text, ids, s.End)
		if err != nil {
			return Example{}, err
		}
		if straddle {
			to++ // the token holding the span's last character
		}
		for i := from; i < min(to, len(ids)); i++ {
			x.Loss[i] = true
		}
	}
	return x, nil
}

// boundary returns how many leading tokens of ids (the tokens of text) lie
// wholly before byte c of text: the common prefix of ids and the tokens of
// text[:c]. straddle reports that the next token also holds characters
// before c.
func (e *Encoder) boundary(text string, ids []int32, c int) (n int, straddle bool, err error) {
	pre, err := e.encode(text[:c], false)
	if err != nil {
		return 0, false, err
	}
	for n < len(pre) && n < len(ids) && pre[n] == ids[n] {
		n++
	}
	return n, n < len(pre), nil
}

// ConversationalPromptCompletion tokenises the prompt rendered with the
// generation prompt, and the whole conversation; the tokens past the
// prompt's are the completion, the template's end-of-turn tokens included.
func (e *Encoder) ConversationalPromptCompletion(prompt, completion []datasets.Message) (Example, error) {
	tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
	if err != nil {
		return Example{}, err
	}
	sp := e.Tok.TemplateSpecials()
	p, err := tmpl.Apply(prompt, true, sp)
	if err != nil {
		return Example{}, err
	}
	full, err := tmpl.Apply(append(slices.Clone(prompt), completion...), false, sp)
	if err != nil {
		return Example{}, err
	}
	pids, err := e.encode(p, false)
	if err != nil {
		return Example{}, err
	}
	fids, err := e.encode(full, false)
	if err != nil {
		return Example{}, err
	}
	return e.split(pids, fids), nil
}

// truncate keeps max_length tokens per truncation_mode and reports whether
// any target is left (TRL drops examples left fully masked).
func (e *Encoder) truncate(x Example) (Example, bool) {
	if e.MaxLength > 0 && len(x.IDs) > e.MaxLength {
		if e.TruncationMode == "keep_end" {
			n := len(x.IDs) - e.MaxLength
			x.IDs, x.Loss = x.IDs[n:], x.Loss[n:]
		} else {
			x.IDs, x.Loss = x.IDs[:e.MaxLength], x.Loss[:e.MaxLength]
		}
	}
	// the first token is never predicted: a target needs a token before it
	return x, len(x.IDs) >= 2 && slices.Contains(x.Loss[1:], true)
}

// EncodeDataset tokenises every record of d in its detected (or given)
// format, with a progress line.
func (e *Encoder) EncodeDataset(d *datasets.Dataset, log zerolog.Logger) ([]Example, error) {
	nd, err := d.Normalize()
	if err != nil {
		return nil, err
	}
	datasets.WarnSkipped(log, d, false)
	defer datasets.WarnSkipped(log, nd, false)
	format, err := nd.DetectFormat()
	if err != nil {
		return nil, err
	}
	prog := metrics.NewProgress(log, "tokenizing "+d.Name, nd.Len())
	defer prog.Done()
	var out []Example
	dropped := 0
	mismatches := e.Mismatches
	add := func(x Example, src datasets.Source, err error) error {
		if err != nil {
			return fmt.Errorf("sft: %s: %w", src, err)
		}
		prog.Add(1)
		x, ok := e.truncate(x)
		if !ok {
			dropped++ // nothing to learn: no target left (TRL drops these too)
			return nil
		}
		out = append(out, x)
		return nil
	}
	defer func() {
		if n := e.Mismatches - mismatches; n > 0 {
			log.Warn().Int("examples", n).Str("split", d.Name).Msg("the prompt's tokens are not the start of prompt+completion's (a token spans the boundary); the completion starts at the prompt's length, as TRL does")
		}
	}()
	switch format {
	case datasets.FormatLanguageModeling, datasets.FormatClassification:
		for i, r := range nd.Records {
			s, ok := r[e.TextField].(string)
			if !ok {
				return nil, fmt.Errorf("sft: %s: field %q: want a string (set dataset_text_field)", nd.Source(i), e.TextField)
			}
			if msg := datasets.BadText(s); msg != "" {
				return nil, fmt.Errorf("sft: %s: field %q: %s", nd.Source(i), e.TextField, msg)
			}
			x, err := e.Text(s)
			if err := add(x, nd.Source(i), err); err != nil {
				return nil, err
			}
		}
	case datasets.FormatPromptCompletion, datasets.FormatConversationalPromptCompletion:
		pcs, err := nd.PromptCompletions()
		if err != nil {
			return nil, err
		}
		for _, pc := range pcs {
			var x Example
			var err error
			if pc.PromptMessages != nil || pc.CompletionMessages != nil {
				x, err = e.ConversationalPromptCompletion(pc.PromptMessages, pc.CompletionMessages)
			} else {
				x, err = e.PromptCompletion(pc.Prompt, pc.Completion)
			}
			if err := add(x, pc.Src, err); err != nil {
				return nil, err
			}
		}
	case datasets.FormatConversational:
		convs, err := nd.Conversations()
		if err != nil {
			return nil, err
		}
		for _, c := range convs {
			x, err := e.Conversation(c.Messages)
			if err := add(x, c.Src, err); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("sft: %s: dataset format %s is not for SFT (want text, prompt/completion or messages)", d.Name, format)
	}
	if dropped > 0 {
		why := fmt.Sprintf("no target token left within max_length %d (truncation_mode %s)", e.MaxLength, e.truncationMode())
		if len(out) == 0 {
			return nil, fmt.Errorf("sft: %s: all %d examples dropped: %s: raise max_length, shorten the prompts, or check completion_only_loss/assistant_only_loss", d.Name, dropped, why)
		}
		log.Warn().Int("dropped", dropped).Int("kept", len(out)).Str("split", d.Name).Msg("examples dropped: " + why)
	}
	return out, nil
}

func (e *Encoder) truncationMode() string {
	if e.TruncationMode == "" {
		return "keep_start"
	}
	return e.TruncationMode
}

// ---------------------------------------------------------------- cache

// cacheKey hashes the records, everything of the tokenizer that changes
// its tokens (tokenizer.json, tokenizer_config.json's settings, the
// special tokens), the settings and the encoder's version.
func cacheKey(d *datasets.Dataset, e *Encoder) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, r := range d.Records {
		if err := enc.Encode(r); err != nil {
			return "", err
		}
	}
	fp, err := e.Tok.Fingerprint()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "|%s|%d|%s|%v|%v|%s|%d|v2", fp, e.MaxLength, e.truncationMode(), e.CompletionOnly, e.AssistantOnlyLoss, e.TextField, e.EOS)
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// CacheDir is where tokenised datasets are kept: $RL_CACHE_DIR, else the
// user cache dir's rl/tokenized.
func CacheDir() string {
	if d := os.Getenv("RL_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "rl", "tokenized")
}

// EncodeCached is EncodeDataset through the on-disk cache.
func (e *Encoder) EncodeCached(d *datasets.Dataset, log zerolog.Logger, noCache bool) ([]Example, error) {
	if noCache {
		return e.EncodeDataset(d, log)
	}
	key, err := cacheKey(d, e)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(CacheDir(), "sft-"+key+".gob")
	if b, err := os.ReadFile(path); err == nil {
		var xs []Example
		if gob.NewDecoder(bytes.NewReader(b)).Decode(&xs) == nil {
			log.Info().Str("split", d.Name).Int("examples", len(xs)).Str("cache", path).Msg("tokenized (cached)")
			return xs, nil
		}
	}
	xs, err := e.EncodeDataset(d, log)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(xs); err == nil {
		if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
			if err := fsutil.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				log.Warn().Err(err).Msg("tokenisation cache not written")
			}
		}
	}
	return xs, nil
}

// ---------------------------------------------------------------- packing

// Row is one training row: one example, or several packed ones with their
// segment ids (1, 2, ...) and positions restarting per example.
type Row struct {
	IDs       []int32
	Loss      []bool
	Segments  []int32 // nil when not packed
	Positions []int32 // nil when not packed
}

// Rows turns examples into rows, packing them when asked.
func Rows(xs []Example, packing bool, maxLen int) []Row {
	if !packing {
		rows := make([]Row, len(xs))
		for i, x := range xs {
			rows[i] = Row{IDs: x.IDs, Loss: x.Loss}
		}
		return rows
	}
	return pack(xs, maxLen)
}

// pack places examples into rows of at most maxLen tokens by best-fit
// decreasing (TRL's "bfd" packing), keeping each example whole.
func pack(xs []Example, maxLen int) []Row {
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(xs[order[a]].IDs) > len(xs[order[b]].IDs) })
	type bin struct {
		free  int
		items []int
	}
	var bins []*bin
	var open []*bin // sorted by free, ascending
	for _, i := range order {
		n := len(xs[i].IDs)
		j := sort.Search(len(open), func(k int) bool { return open[k].free >= n })
		var b *bin
		if j < len(open) {
			b = open[j]
			open = append(open[:j], open[j+1:]...)
		} else {
			b = &bin{free: maxLen}
			bins = append(bins, b)
		}
		b.items = append(b.items, i)
		b.free -= n
		if b.free > 0 {
			k := sort.Search(len(open), func(k int) bool { return open[k].free >= b.free })
			open = slices.Insert(open, k, b)
		}
	}
	rows := make([]Row, len(bins))
	for r, b := range bins {
		var row Row
		for s, i := range b.items {
			x := xs[i]
			row.IDs = append(row.IDs, x.IDs...)
			row.Loss = append(row.Loss, x.Loss...)
			for p := range x.IDs {
				row.Segments = append(row.Segments, int32(s+1))
				row.Positions = append(row.Positions, int32(p))
			}
		}
		rows[r] = row
	}
	return rows
}

// ---------------------------------------------------------------- batches

// Batch is a right-padded batch: Targets[b][t] is the token to predict at
// position t (the next token, or -100 where no loss is wanted: padding,
// untrained tokens, segment ends).
type Batch struct {
	B, T      int
	IDs       []int64
	Targets   []int64
	Segments  []int64 // nil unless packed
	Positions []int64 // nil unless packed
	tokens    int
}

// NumTokens counts real (non-pad) tokens.
func (b *Batch) NumTokens() int { return b.tokens }

// IgnoreIndex is the label that carries no loss (PyTorch's default).
const IgnoreIndex = -100

// Collate pads rows on the right with pad and builds shifted targets.
func Collate(rows []Row, pad int) *Batch {
	T := 0
	for _, r := range rows {
		T = max(T, len(r.IDs))
	}
	packed := len(rows) > 0 && rows[0].Segments != nil
	b := &Batch{B: len(rows), T: T}
	b.IDs = make([]int64, b.B*T)
	b.Targets = make([]int64, b.B*T)
	if packed {
		b.Segments = make([]int64, b.B*T)
		b.Positions = make([]int64, b.B*T)
	}
	for i, r := range rows {
		b.tokens += len(r.IDs)
		for t := 0; t < T; t++ {
			k := i*T + t
			b.Targets[k] = IgnoreIndex
			if t >= len(r.IDs) {
				b.IDs[k] = int64(pad)
				continue
			}
			b.IDs[k] = int64(r.IDs[t])
			if packed {
				b.Segments[k] = int64(r.Segments[t])
				b.Positions[k] = int64(r.Positions[t])
			}
			if t+1 < len(r.IDs) && r.Loss[t+1] && (!packed || r.Segments[t+1] == r.Segments[t]) {
				b.Targets[k] = int64(r.IDs[t+1])
			}
		}
	}
	return b
}

// Data serves rows as batches to the trainer.
type Data struct {
	Rows []Row
	Pad  int
}

func (d *Data) Len() int { return len(d.Rows) }

func (d *Data) Batch(idx []int) (*Batch, error) {
	rows := make([]Row, len(idx))
	for i, j := range idx {
		rows[i] = d.Rows[j]
	}
	return Collate(rows, d.Pad), nil
}
