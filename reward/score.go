package reward

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rlsuite/rl/datasets"
	"github.com/rlsuite/rl/shared/checkpoint"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/tokenizer"
)

// Scorer scores prompt-completion pairs with a reward model, encoding them
// as training does: the prompt with the tokenizer's special tokens, the
// completion without, then eos; the score is read at the last token.
type Scorer struct {
	// M is the reward model. An encoder (BERT, RoBERTa, DeBERTa-v2/v3 with a
	// regression head, e.g. OpenAssistant/reward-model-deberta-v3-large-v2)
	// reads each pair as tokenizer(prompt, completion), the sentence pair
	// with the tokenizer's special tokens and type ids ([CLS] prompt [SEP]
	// completion [SEP]), scored at its first token; EOS is not used.
	M   *model.Model
	Tok *tokenizer.Tokenizer
	// EOS is appended to each completion (-1: none); default the tokenizer's.
	EOS int
	// BatchSize is the number of rows per forward pass.
	BatchSize int
	// MaxLength caps a row's tokens; a longer row keeps its last MaxLength
	// tokens (the start of the prompt is cut), since the score is read at
	// the end. Default: the model's positions.
	MaxLength int
	// Truncated counts rows cut to MaxLength by Score.
	Truncated int
}

// LoadScorer loads the reward model (a …ForSequenceClassification
// checkpoint with num_labels 1) and tokenizer saved in dir.
func LoadScorer(dir string, dev tensor.Device) (*Scorer, error) {
	cfg, err := model.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	isRM := false
	for _, a := range cfg.Architectures {
		isRM = isRM || strings.HasSuffix(a, "ForSequenceClassification")
	}
	if !isRM {
		return nil, fmt.Errorf("reward: %s is not a reward model (architectures %v, want …ForSequenceClassification): train one with `rl reward`", dir, cfg.Architectures)
	}
	m, tok, err := checkpoint.Load(dir, model.LoadOptions{Head: model.ScoreHead, NumLabels: 1, Device: dev})
	if err != nil {
		return nil, err
	}
	if m.Config.NumLabels != 1 {
		n := m.Config.NumLabels
		m.Free()
		return nil, fmt.Errorf("reward: %s has num_labels %d, want 1 (one score per sequence)", dir, n)
	}
	return &Scorer{M: m, Tok: tok, EOS: tok.EOS(), BatchSize: 16, MaxLength: m.Config.MaxPositions}, nil
}

// Free releases the model.
func (s *Scorer) Free() {
	s.M.Free()
}

// Score returns the reward of each (prompts[i], completions[i]). It runs
// without gradients, in batches of rows of similar length.
func (s *Scorer) Score(prompts, completions []string) (scores []float64, err error) {
	defer tensor.Recover(&err, "reward: score")
	if len(prompts) != len(completions) {
		return nil, fmt.Errorf("reward: score: %d prompts but %d completions", len(prompts), len(completions))
	}
	maxLen := s.MaxLength
	if maxLen <= 0 || maxLen > s.M.Config.MaxTokens() {
		maxLen = s.M.Config.MaxTokens()
	}
	bs := max(s.BatchSize, 1)
	rows := make([][]int64, len(prompts))
	types := make([][]int, len(prompts)) // token type ids (encoders' pairs)
	for i := range prompts {
		// as reward training tokenises (TRL's RewardTrainer): eos text
		// appended, the whole string with the tokenizer's special tokens;
		// an encoder reads (prompt, completion) as a pair, as encoder
		// reward models are called (tokenizer(question, answer))
		var ids []int
		var err error
		if s.M.Config.Encoder() {
			ids, types[i], err = s.encoderRow(prompts[i], completions[i], maxLen)
		} else {
			ids, err = s.Tok.EncodeWithEOS(prompts[i]+completions[i], s.EOS, true)
		}
		if err != nil {
			return nil, fmt.Errorf("reward: score: row %d: %w", i, err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("reward: score: row %d encodes to no tokens", i)
		}
		if len(ids) > maxLen {
			ids = ids[len(ids)-maxLen:]
			s.Truncated++
		}
		row := make([]int64, len(ids))
		for j, id := range ids {
			row[j] = int64(id)
		}
		rows[i] = row
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(rows[a]) - len(rows[b]) })
	scores = make([]float64, len(rows))
	pad := int64(max(s.Tok.PAD(), 0))
	if p := s.M.Config.PadTokenID; p != nil && s.M.Config.Encoder() {
		pad = int64(*p) // RoBERTa's positions skip pad_token_id
	}
	tensor.NoGrad(func() {
		for lo := 0; lo < len(order); lo += bs {
			idx := order[lo:min(lo+bs, len(order))]
			T := len(rows[idx[len(idx)-1]])
			ids := make([]int64, len(idx)*T)
			last := make([]int64, len(idx))
			for r, i := range idx {
				n := copy(ids[r*T:], rows[i])
				for t := n; t < T; t++ {
					ids[r*T+t] = pad
				}
				last[r] = int64(n - 1)
			}
			tensor.Tidy(func() {
				var tt []int64
				if s.M.Config.Encoder() {
					tt = make([]int64, len(idx)*T)
					for r, i := range idx {
						for t, v := range types[i] {
							tt[r*T+t] = int64(v)
						}
					}
				}
				v := scoresAt(s.M, ids, tt, last, int64(len(idx)), int64(T), false).Float64s()
				for r, i := range idx {
					scores[i] = v[r]
				}
			})
		}
	})
	return scores, nil
}

// encoderRow encodes a row for an encoder reward model: the tokenizer's
// pair template over (prompt, completion) with its token type ids, or the
// completion alone with its special tokens when the prompt is empty,
// truncated longest-first to maxLen (the start holds the [CLS] the head
// reads). Rows cut count in Truncated.
func (s *Scorer) encoderRow(prompt, completion string, maxLen int) ([]int, []int, error) {
	b, err := s.Tok.Encode(completion, false)
	if err != nil {
		return nil, nil, err
	}
	if prompt == "" {
		budget := max(maxLen-s.Tok.NumSpecialTokens(false), 0)
		if len(b) > budget {
			b = b[:budget]
			s.Truncated++
		}
		ids := s.Tok.WithSpecials(b)
		return ids, make([]int, len(ids)), nil
	}
	a, err := s.Tok.Encode(prompt, false)
	if err != nil {
		return nil, nil, err
	}
	budget := max(maxLen-s.Tok.NumSpecialTokens(true), 0)
	if len(a)+len(b) > budget {
		s.Truncated++
		for len(a)+len(b) > budget {
			if len(a) >= len(b) {
				a = a[:len(a)-1]
			} else {
				b = b[:len(b)-1]
			}
		}
	}
	return s.Tok.PairTemplate(a, b)
}

// Request is one line of `rl score` input: a prompt with one completion, or
// with a chosen and a rejected completion (Pair).
type Request struct {
	Prompt, Completion string
	Chosen, Rejected   string
	Pair               bool
	Src                datasets.Source
}

// ReadRequests reads JSONL from r (name is used in errors as name:line):
// each non-blank line an object with "prompt" and "completion", or with
// "chosen" and "rejected" (and an optional "prompt"; without one, the
// shared start of chosen and rejected is the prompt, as TRL extracts it).
func ReadRequests(r io.Reader, name string) ([]Request, error) {
	br := bufio.NewReader(r)
	var out []Request
	for line := 1; ; line++ {
		text, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reward: %s:%d: %w", name, line, err)
		}
		if strings.TrimSpace(text) != "" {
			req, perr := parseRequest(text, datasets.Source{File: name, Line: line})
			if perr != nil {
				return nil, perr
			}
			out = append(out, req)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return out, nil
}

func parseRequest(text string, src datasets.Source) (Request, error) {
	bad := func(format string, a ...any) (Request, error) {
		return Request{}, fmt.Errorf("reward: %s: %s", src, fmt.Sprintf(format, a...))
	}
	if !utf8.ValidString(text) {
		return bad("invalid UTF-8 (json would replace it with U+FFFD)")
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		return bad("not a JSON object: %v", err)
	}
	str := func(key string, required bool) (string, bool, error) {
		v, ok := rec[key]
		if !ok || v == nil {
			if required {
				return "", false, fmt.Errorf("reward: %s: field %q: missing", src, key)
			}
			return "", false, nil
		}
		s, ok := v.(string)
		if !ok {
			return "", true, fmt.Errorf("reward: %s: field %q: want a string, got %T (conversational records are not supported: render them with the chat template first)", src, key, v)
		}
		if msg := datasets.BadText(s); msg != "" {
			return "", true, fmt.Errorf("reward: %s: field %q: %s", src, key, msg)
		}
		return s, true, nil
	}
	req := Request{Src: src}
	prompt, hasPrompt, err := str("prompt", false)
	if err != nil {
		return Request{}, err
	}
	_, hasCompletion := rec["completion"]
	_, hasChosen := rec["chosen"]
	_, hasRejected := rec["rejected"]
	switch {
	case hasCompletion && (hasChosen || hasRejected):
		return bad("has both completion and chosen/rejected: want one or the other")
	case hasCompletion:
		if req.Completion, _, err = str("completion", true); err != nil {
			return Request{}, err
		}
		if req.Completion == "" {
			return bad("field %q: empty string", "completion")
		}
		req.Prompt = prompt
	case hasChosen || hasRejected:
		req.Pair = true
		if req.Chosen, _, err = str("chosen", true); err != nil {
			return Request{}, err
		}
		if req.Rejected, _, err = str("rejected", true); err != nil {
			return Request{}, err
		}
		if hasPrompt {
			req.Prompt = prompt
		} else {
			req.Prompt, req.Chosen, req.Rejected = datasets.ExtractPrompt(req.Chosen, req.Rejected)
		}
		if req.Chosen == "" {
			return bad("field %q: empty string", "chosen")
		}
		if req.Rejected == "" {
			return bad("field %q: empty string", "rejected")
		}
	default:
		return bad("want \"completion\" (with an optional \"prompt\"), or \"chosen\" and \"rejected\"")
	}
	return req, nil
}

// ScoreRequests scores every request: one row per completion, two per pair.
// It returns the scores in request order: one for a single completion,
// chosen then rejected for a pair.
func (s *Scorer) ScoreRequests(reqs []Request) ([][]float64, error) {
	var prompts, comps []string
	for _, r := range reqs {
		if r.Pair {
			prompts = append(prompts, r.Prompt, r.Prompt)
			comps = append(comps, r.Chosen, r.Rejected)
		} else {
			prompts = append(prompts, r.Prompt)
			comps = append(comps, r.Completion)
		}
	}
	flat, err := s.Score(prompts, comps)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(reqs))
	k := 0
	for i, r := range reqs {
		n := 1
		if r.Pair {
			n = 2
		}
		out[i] = flat[k : k+n]
		k += n
	}
	return out, nil
}
