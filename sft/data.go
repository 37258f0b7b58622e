package sft

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// Encoder turns records into Examples with a tokenizer and the SFT settings.
type Encoder struct {
	Tok               *tokenizer.Tokenizer
	MaxLength         int
	CompletionOnly    bool
	AssistantOnlyLoss bool
	TextField         string
	EOS               int // appended to each example; -1 for none
}

func (e *Encoder) encode(text string, special bool) ([]int32, error) {
	ids, err := e.Tok.Encode(text, special)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out, nil
}

// add appends ids with the given loss flag.
func (x *Example) add(ids []int32, loss bool) {
	x.IDs = append(x.IDs, ids...)
	for range ids {
		x.Loss = append(x.Loss, loss)
	}
}

// finish appends eos (trained when the last part was) and truncates.
func (e *Encoder) finish(x Example, lossOnEOS bool) Example {
	if e.EOS >= 0 && (len(x.IDs) == 0 || x.IDs[len(x.IDs)-1] != int32(e.EOS)) {
		x.IDs = append(x.IDs, int32(e.EOS))
		x.Loss = append(x.Loss, lossOnEOS)
	}
	if len(x.IDs) > e.MaxLength {
		x.IDs, x.Loss = x.IDs[:e.MaxLength], x.Loss[:e.MaxLength]
	}
	return x
}

// Text encodes language-modelling text: every token is a target.
func (e *Encoder) Text(text string) (Example, error) {
	ids, err := e.encode(text, true)
	if err != nil {
		return Example{}, err
	}
	var x Example
	x.add(ids, true)
	return e.finish(x, true), nil
}

// PromptCompletion encodes prompt then completion; with CompletionOnly the
// prompt tokens are not targets.
func (e *Encoder) PromptCompletion(prompt, completion string) (Example, error) {
	p, err := e.encode(prompt, true)
	if err != nil {
		return Example{}, err
	}
	c, err := e.encode(completion, false)
	if err != nil {
		return Example{}, err
	}
	var x Example
	x.add(p, !e.CompletionOnly)
	x.add(c, true)
	return e.finish(x, true), nil
}

func (e *Encoder) special() map[string]string {
	sp := map[string]string{}
	if id := e.Tok.BOS(); id >= 0 {
		sp["bos_token"], _ = e.Tok.IDToToken(id)
	}
	if id := e.Tok.EOS(); id >= 0 {
		sp["eos_token"], _ = e.Tok.IDToToken(id)
	}
	return sp
}

// Conversation renders messages with the chat template; with
// AssistantOnlyLoss only assistant turns are targets. Text pieces are
// tokenised separately at the span boundaries.
func (e *Encoder) Conversation(msgs []datasets.Message) (Example, error) {
	tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
	if err != nil {
		return Example{}, err
	}
	text, spans, err := tmpl.AssistantSpans(msgs, e.special())
	if err != nil {
		return Example{}, err
	}
	var x Example
	pos := 0
	for _, s := range spans {
		if s.Start > pos {
			ids, err := e.encode(text[pos:s.Start], false)
			if err != nil {
				return Example{}, err
			}
			x.add(ids, !e.AssistantOnlyLoss)
		}
		ids, err := e.encode(text[s.Start:s.End], false)
		if err != nil {
			return Example{}, err
		}
		x.add(ids, true)
		pos = s.End
	}
	if pos < len(text) {
		ids, err := e.encode(text[pos:], false)
		if err != nil {
			return Example{}, err
		}
		x.add(ids, !e.AssistantOnlyLoss)
	}
	// Chat templates carry their own end-of-turn tokens: no extra eos.
	if len(x.IDs) > e.MaxLength {
		x.IDs, x.Loss = x.IDs[:e.MaxLength], x.Loss[:e.MaxLength]
	}
	return x, nil
}

// ConversationalPromptCompletion renders the prompt with the generation
// prompt; the completion is the rest of the full rendering.
func (e *Encoder) ConversationalPromptCompletion(prompt, completion []datasets.Message) (Example, error) {
	tmpl, err := datasets.CompileChatTemplate(e.Tok.ChatTemplate())
	if err != nil {
		return Example{}, err
	}
	p, err := tmpl.Apply(prompt, true, e.special())
	if err != nil {
		return Example{}, err
	}
	full, err := tmpl.Apply(append(slices.Clone(prompt), completion...), false, e.special())
	if err != nil {
		return Example{}, err
	}
	if len(full) < len(p) || full[:len(p)] != p {
		return Example{}, errors.New("the chat template's rendering of the prompt is not a prefix of prompt + completion")
	}
	x, err := e.PromptCompletion(p, full[len(p):])
	if err != nil {
		return Example{}, err
	}
	if e.EOS >= 0 && len(x.IDs) > 0 && x.IDs[len(x.IDs)-1] == int32(e.EOS) && len(x.IDs) >= 2 {
		// chat templates end turns themselves; PromptCompletion added eos
		x.IDs, x.Loss = x.IDs[:len(x.IDs)-1], x.Loss[:len(x.Loss)-1]
	}
	return x, nil
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
	add := func(x Example, src datasets.Source, err error) error {
		if err != nil {
			return fmt.Errorf("sft: %s: %w", src, err)
		}
		prog.Add(1)
		if len(x.IDs) < 2 {
			return nil // nothing to learn from one token
		}
		out = append(out, x)
		return nil
	}
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
	return out, nil
}

// ---------------------------------------------------------------- cache

// cacheKey hashes the records, the tokenizer and the settings.
func cacheKey(d *datasets.Dataset, tokJSON []byte, e *Encoder) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, r := range d.Records {
		if err := enc.Encode(r); err != nil {
			return "", err
		}
	}
	h.Write(tokJSON)
	fmt.Fprintf(h, "|%d|%v|%v|%s|%d|%s|v1", e.MaxLength, e.CompletionOnly, e.AssistantOnlyLoss, e.TextField, e.EOS, e.Tok.ChatTemplate())
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
func (e *Encoder) EncodeCached(d *datasets.Dataset, tokJSON []byte, log zerolog.Logger, noCache bool) ([]Example, error) {
	if noCache {
		return e.EncodeDataset(d, log)
	}
	key, err := cacheKey(d, tokJSON, e)
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
