package classify

import (
	"fmt"
	"slices"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Labeled is a split's classification examples with ids that mean the same
// class in every split.
type Labeled struct {
	Examples []datasets.Example
	// Names are the class names (ClassLabel names or the sorted string
	// labels of the training split), nil for integer labels.
	Names []string
	// NumLabels is len(Names), or the largest training label + 1 (at least 2);
	// 1 for regression.
	NumLabels int
	// Targets are the float labels of regression (one value) and
	// multi-label classification (a 0/1 value per class), by example; nil
	// for single-label data.
	Targets [][]float32
}

// loadOptions turns the data settings into datasets.LoadOptions; the
// column overrides become renames to text, text_pair and label.
func (c *Config) loadOptions() datasets.LoadOptions {
	o := datasets.LoadOptions{Format: c.DatasetFormat, SkipBadRecords: c.SkipBadRecords, NoHeader: c.NoHeader, ColumnNames: c.ColumnNames}
	rename, _ := datasets.ParseColumns(c.Columns) // checked by Validate
	if rename == nil {
		rename = map[string]string{}
	}
	if c.TextColumn != "" && c.TextColumn != "text" {
		rename[c.TextColumn] = "text"
	}
	if c.PairColumn != "" && c.PairColumn != "text_pair" {
		rename[c.PairColumn] = "text_pair"
	}
	if c.LabelColumn != "" && c.LabelColumn != "label" {
		rename[c.LabelColumn] = "label"
	}
	if len(rename) > 0 {
		o.Columns = rename
	}
	return o
}

// evalSplitNames are the splits tried, in order, when dataset_test_split is unset.
var evalSplitNames = []string{"validation", "test"}

// LoadSplits loads the training split and the evaluation split of cfg:
// eval_dataset_name when set, else dataset_test_split (default: validation,
// else test) of dataset_name, else eval_ratio of the training split. The
// eval split is nil when there is none.
func LoadSplits(cfg *Config) (trainSet, evalSet *datasets.Dataset, err error) {
	opts := cfg.loadOptions()
	dd, err := datasets.Load(cfg.Dataset, opts)
	if err != nil {
		return nil, nil, err
	}
	if trainSet, err = dd.Split(cfg.TrainSplit); err != nil {
		return nil, nil, err
	}
	names := evalSplitNames
	if cfg.TestSplit != "" {
		names = []string{cfg.TestSplit}
	}
	if cfg.EvalDataset != "" {
		ed, err := datasets.Load(cfg.EvalDataset, opts)
		if err != nil {
			return nil, nil, err
		}
		if len(ed.Splits) == 1 {
			return trainSet, ed.Splits[ed.Names()[0]], nil
		}
		for _, n := range names {
			if s, ok := ed.Splits[n]; ok {
				return trainSet, s, nil
			}
		}
		return nil, nil, fmt.Errorf("classify: eval_dataset_name %s: no split %v (have %v)", cfg.EvalDataset, names, ed.Names())
	}
	for _, n := range names {
		if s, ok := dd.Splits[n]; ok && n != cfg.TrainSplit {
			return trainSet, s, nil
		}
	}
	if cfg.EvalRatio > 0 {
		trainSet, evalSet = trainSet.TrainTestSplit(cfg.EvalRatio, cfg.Seed)
	}
	return trainSet, evalSet, nil
}

// Label reads the classification examples of the training split and of the
// eval split (may be nil) and gives their labels one meaning: string labels
// of the eval split are mapped to the training split's names. An unlabeled
// example (label -1), a label the training data does not define, or an
// eval label of another kind than the training labels is an error naming
// file:line.
func Label(trainSet, evalSet *datasets.Dataset) (tr, ev *Labeled, err error) {
	exs, names, err := trainSet.Classifications()
	if err != nil {
		return nil, nil, fmt.Errorf("classify: training data: %w", err)
	}
	if len(exs) == 0 {
		return nil, nil, fmt.Errorf("classify: the training split %q has no examples", trainSet.Name)
	}
	k := len(names)
	for _, e := range exs {
		if e.Label < 0 {
			return nil, nil, fmt.Errorf("classify: %s: unlabeled example (label -1) in the training split", e.Src)
		}
		if names == nil {
			k = max(k, e.Label+1)
		}
	}
	k = max(k, 2)
	tr = &Labeled{Examples: exs, Names: names, NumLabels: k}
	if evalSet == nil {
		return tr, nil, nil
	}
	eexs, enames, err := evalSet.Classifications()
	if err != nil {
		return nil, nil, fmt.Errorf("classify: eval data: %w", err)
	}
	switch {
	case enames != nil && names == nil:
		return nil, nil, fmt.Errorf("classify: eval labels are names %q but the training labels are integers", enames)
	case enames != nil && !slices.Equal(enames, names):
		for i, e := range eexs {
			j := slices.Index(names, enames[e.Label])
			if j < 0 {
				return nil, nil, fmt.Errorf("classify: %s: label %q does not occur in the training data (classes %q)", e.Src, enames[e.Label], names)
			}
			eexs[i].Label = j
		}
	}
	for _, e := range eexs {
		if e.Label < 0 {
			return nil, nil, fmt.Errorf("classify: %s: unlabeled example (label -1) in the eval split (GLUE test splits have no labels: evaluate on validation)", e.Src)
		}
		if e.Label >= k {
			return nil, nil, fmt.Errorf("classify: %s: label %d does not occur in the training data (%d classes)", e.Src, e.Label, k)
		}
	}
	return tr, &Labeled{Examples: eexs, Names: names, NumLabels: k}, nil
}

// Encoder turns a text or a sentence pair into token ids: for a decoder,
// text, then for a pair the separator and text_pair, as GPT-2 style
// sequence classifiers are fed (they have no [CLS]/[SEP]; the score head
// reads the last token); for an encoder (Templates), the tokenizer's
// post-processor templates with token type ids, as tokenizer(text,
// text_pair, truncation=True, max_length=...) gives BERT its
// [CLS] a [SEP] b [SEP] (the head reads [CLS]).
type Encoder struct {
	Tok       *tokenizer.Tokenizer
	MaxLength int
	// Sep separates the two texts of a pair: the tokenizer's eos token, or
	// the token(s) of a space when it has none.
	Sep []int
	// Templates encodes with the tokenizer's special tokens and pair
	// template (encoder models), keeping the token type ids.
	Templates bool
}

// NewEncoderFor is NewEncoder for the model of config c: an encoder family
// encodes with the tokenizer's templates.
func NewEncoderFor(tok *tokenizer.Tokenizer, maxLength int, c *model.Config) (*Encoder, error) {
	e, err := NewEncoder(tok, min(maxLength, c.MaxTokens()))
	if err == nil {
		e.Templates = c.Encoder()
	}
	return e, err
}

// truncatePair removes tokens from the longer of a and b until they fit
// budget (truncation="longest_first").
func truncatePair(a, b []int, budget int) ([]int, []int) {
	la, lb := len(a), len(b)
	for over := la + lb - budget; over > 0; over-- {
		if la >= lb {
			la--
		} else {
			lb--
		}
	}
	return a[:la], b[:lb]
}

// EncodeTypes is Encode with the token type ids (nil unless Templates).
func (e *Encoder) EncodeTypes(text, pair string) ([]int32, []int8, error) {
	if !e.Templates {
		ids, err := e.Encode(text, pair)
		return ids, nil, err
	}
	a, err := e.Tok.Encode(text, false)
	if err != nil {
		return nil, nil, err
	}
	var ids, types []int
	if pair == "" {
		a = a[:min(len(a), max(e.MaxLength-e.Tok.NumSpecialTokens(false), 0))]
		ids = e.Tok.WithSpecials(a)
		types = make([]int, len(ids))
	} else {
		b, err := e.Tok.Encode(pair, false)
		if err != nil {
			return nil, nil, err
		}
		a, b = truncatePair(a, b, max(e.MaxLength-e.Tok.NumSpecialTokens(true), 0))
		if ids, types, err = e.Tok.PairTemplate(a, b); err != nil {
			return nil, nil, err
		}
	}
	ids, types = ids[:min(len(ids), e.MaxLength)], types[:min(len(types), e.MaxLength)]
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("text encodes to no tokens")
	}
	out, tt := make([]int32, len(ids)), make([]int8, len(ids))
	for i, id := range ids {
		out[i], tt[i] = int32(id), int8(types[i])
	}
	return out, tt, nil
}

// NewEncoder returns an Encoder with the separator of tok.
func NewEncoder(tok *tokenizer.Tokenizer, maxLength int) (*Encoder, error) {
	e := &Encoder{Tok: tok, MaxLength: maxLength}
	if id := tok.EOS(); id >= 0 {
		e.Sep = []int{id}
	} else {
		sep, err := tok.Encode(" ", false)
		if err != nil {
			return nil, fmt.Errorf("classify: encode the pair separator: %w", err)
		}
		e.Sep = sep
	}
	return e, nil
}

// Encode returns the ids of text (and pair when not empty), truncated to
// MaxLength: a single text is cut at the end; for a pair the longer text
// loses tokens first (truncation="longest_first"). It is an error for the
// result to hold no token.
func (e *Encoder) Encode(text, pair string) ([]int32, error) {
	a, err := e.Tok.Encode(text, true)
	if err != nil {
		return nil, err
	}
	var ids []int
	if pair == "" {
		ids = a[:min(len(a), e.MaxLength)]
	} else {
		b, err := e.Tok.Encode(pair, false)
		if err != nil {
			return nil, err
		}
		// remove from the longer text until both are equal, then alternately
		a, b = truncatePair(a, b, max(e.MaxLength-len(e.Sep), 0))
		ids = append(append(append(ids, a...), e.Sep...), b...)
		ids = ids[:min(len(ids), e.MaxLength)]
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("text encodes to no tokens")
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out, nil
}

// Previewed is what Preview returns: the first training examples encoded
// as Run encodes them, with the labels as Run reads them.
type Previewed struct {
	Data *Data
	// ProblemType is the loss Run would train with (problem_type).
	ProblemType string
	// Names are the class names: by class id (single-label; nil for
	// integer labels), or of the columns of Data.Targets (multi-label
	// from lists of names; nil for 0/1 vectors).
	Names []string
	Tok   *tokenizer.Tokenizer
}

// Preview returns the first n training examples encoded as Run encodes
// them (rl data show), with their labels read as Run reads them (class
// ids, regression scores or multi-hot targets) and the tokenizer, without
// loading the model.
func Preview(cfg Config, n int) (*Previewed, error) {
	tok, err := tokenizer.Load(cfg.TokenizerPath())
	if err != nil {
		return nil, err
	}
	trainSet, _, err := LoadSplits(&cfg)
	if err != nil {
		return nil, err
	}
	problem, trL, _, err := cfg.labelSplits(trainSet, nil)
	if err != nil {
		return nil, err
	}
	if len(trL.Examples) > n {
		trL.Examples = trL.Examples[:n]
		if trL.Targets != nil {
			trL.Targets = trL.Targets[:n]
		}
	}
	enc, err := NewEncoder(tok, cfg.MaxLength)
	if err != nil {
		return nil, err
	}
	enc.Templates = cfg.ModelConfig.IsEncoder(cfg.Init)
	d, err := enc.EncodeAll(trL.Examples, trL.Targets...)
	if err != nil {
		return nil, err
	}
	d.Pad = max(tok.PAD(), 0)
	return &Previewed{Data: d, ProblemType: problem, Names: trL.Names, Tok: tok}, nil
}

// EncodeAll encodes examples; an error names the example's file:line.
// targets (nil for single-label data) are the float labels of each example.
func (e *Encoder) EncodeAll(exs []datasets.Example, targets ...[]float32) (*Data, error) {
	d := &Data{X: make([][]int32, len(exs)), Labels: make([]int, len(exs))}
	for i, ex := range exs {
		ids, types, err := e.EncodeTypes(ex.Text, ex.TextPair)
		if err != nil {
			return nil, fmt.Errorf("classify: %s: %w", ex.Src, err)
		}
		d.X[i], d.Labels[i] = ids, ex.Label
		if targets != nil {
			d.Targets = append(d.Targets, targets[i])
		}
		if e.Templates {
			d.Types = append(d.Types, types)
		}
	}
	return d, nil
}

// Data is an encoded split: token ids and class ids. It implements
// train.Dataset.
type Data struct {
	X      [][]int32
	Labels []int
	Pad    int // the padding id (right padding)
	// Types are the token type ids of each row (encoders), nil for decoders.
	Types [][]int8
	// Targets are the float labels (regression, multi-label), nil for
	// single-label data.
	Targets [][]float32
}

// Len implements train.Dataset.
func (d *Data) Len() int { return len(d.X) }

// Batch implements train.Dataset: the rows right-padded to the longest.
func (d *Data) Batch(indices []int) (*Batch, error) {
	b := &Batch{B: len(indices)}
	for _, i := range indices {
		b.T = max(b.T, len(d.X[i]))
	}
	b.IDs = make([]int64, b.B*b.T)
	for r, i := range indices {
		row := b.IDs[r*b.T : (r+1)*b.T]
		for t := range row {
			row[t] = int64(d.Pad)
		}
		for t, id := range d.X[i] {
			row[t] = int64(id)
		}
		b.Lens = append(b.Lens, len(d.X[i]))
		b.Labels = append(b.Labels, int64(d.Labels[i]))
	}
	if d.Targets != nil {
		b.K = len(d.Targets[indices[0]])
		for _, i := range indices {
			b.Targets = append(b.Targets, d.Targets[i]...)
		}
	}
	if d.Types != nil {
		b.TypeIDs = make([]int64, b.B*b.T)
		for r, i := range indices {
			for t, v := range d.Types[i] {
				b.TypeIDs[r*b.T+t] = int64(v)
			}
		}
	}
	return b, nil
}

// Batch is B right-padded rows of T tokens with their lengths and labels.
type Batch struct {
	B, T   int
	IDs    []int64 // (B, T)
	Lens   []int   // (B): real tokens per row; the score is read at Lens-1
	Labels []int64 // (B)
	// TypeIDs (B, T) are the token type ids (encoders; pads 0), nil for decoders.
	TypeIDs []int64
	// Targets (B, K) are the float labels of regression and multi-label
	// data, nil for single-label data.
	Targets []float32
	K       int
}

// Mask is the attention mask (B, T): 1 for the Lens real tokens of each row.
func (b *Batch) Mask() []int64 {
	m := make([]int64, b.B*b.T)
	for r, l := range b.Lens {
		for t := 0; t < l; t++ {
			m[r*b.T+t] = 1
		}
	}
	return m
}

// NumTokens implements train.Batch: real (non-pad) tokens.
func (b *Batch) NumTokens() int {
	n := 0
	for _, l := range b.Lens {
		n += l
	}
	return n
}
