package tokenizer

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// unigramModel is the Unigram language model tokenizer of SentencePiece
// (Kudo 2018, arXiv:1804.10959, section 3.2) as tokenizers runs it
// (tokenizers/src/models/unigram/model.rs, encode_optimized): the Viterbi
// path maximising the sum of piece log-probabilities; a character no piece
// starts with is unk, scored min_score - 10; consecutive unks are fused
// into one; with byte_fallback an unk piece becomes its <0xXX> byte pieces
// when all of them exist.
type unigramModel struct {
	ids      map[string]int32 // piece -> id (a later duplicate wins, as in HF)
	scores   []float64        // by id
	prefixes map[string]bool  // every non-empty prefix of a piece, to stop the search early
	maxLen   int              // longest piece in bytes
	unk      int              // unk_id, -1 when absent
	unkScore float64          // min_score - K_UNK_PENALTY (10)
	byteIDs  [256]int32       // ids of <0x00>..<0xFF>, -1 when absent
	fallback bool             // byte_fallback
}

func buildUnigram(o obj) (*unigramModel, error) {
	list, ok := o["vocab"].([]any)
	if !ok {
		return nil, fmt.Errorf("model.vocab is not a list of [piece, score] pairs")
	}
	m := &unigramModel{
		ids:      make(map[string]int32, len(list)),
		scores:   make([]float64, len(list)),
		prefixes: make(map[string]bool, 4*len(list)),
		unk:      -1,
	}
	minScore := math.Inf(1)
	for i, x := range list {
		e, _ := x.([]any)
		if len(e) != 2 {
			return nil, fmt.Errorf("model.vocab[%d] is not a [piece, score] pair", i)
		}
		tok, ok1 := e[0].(string)
		score, ok2 := e[1].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("model.vocab[%d] is not a [string, number] pair", i)
		}
		m.ids[tok] = int32(i)
		m.scores[i] = score
		minScore = min(minScore, score)
		m.maxLen = max(m.maxLen, len(tok))
		for j := 1; j <= len(tok); j++ {
			m.prefixes[tok[:j]] = true
		}
	}
	m.unkScore = minScore - 10
	if v, ok := o["unk_id"]; ok && v != nil {
		f, ok := v.(float64)
		if !ok || f < 0 || f != math.Trunc(f) {
			return nil, fmt.Errorf("model.unk_id %v is not an index", v)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("model.vocab is empty but model.unk_id is set")
		}
		if int(f) >= len(list) {
			return nil, fmt.Errorf("model.unk_id %d is past the end of model.vocab (%d pieces)", int(f), len(list))
		}
		m.unk = int(f)
	}
	if v, ok := o["byte_fallback"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("model.byte_fallback is not a boolean")
		}
		m.fallback = b
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := m.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	return m, nil
}

// errNoUnk is what HF raises (MissingUnkId) when a Unigram model without
// unk_id meets a character none of its pieces covers; tokenize then uses id
// -1, which encode reports.
const noUnk = -1

func (m *unigramModel) tokenize(s string, out []int) []int {
	if s == "" {
		return out
	}
	type node struct {
		id    int32
		score float64
		start int // -1: not reached
	}
	best := make([]node, len(s)+1)
	for i := range best {
		best[i].start = -1
	}
	best[0].start = 0
	for start := 0; start < len(s); {
		base := best[start].score
		_, mblen := utf8.DecodeRuneInString(s[start:])
		single := false
		for end := start + 1; end <= len(s) && end-start <= m.maxLen; end++ {
			p := s[start:end]
			if !m.prefixes[p] {
				break
			}
			id, ok := m.ids[p]
			if !ok {
				continue
			}
			cand := base + m.scores[id]
			if t := &best[end]; t.start < 0 || cand > t.score {
				*t = node{id: id, score: cand, start: start}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			cand := base + m.unkScore
			if t := &best[start+mblen]; t.start < 0 || cand > t.score {
				*t = node{id: int32(m.unk), score: cand, start: start}
			}
		}
		start += mblen
	}
	// Backtrack, fusing runs of unk into one piece (fuse_unk is always on
	// for tokenizer.json Unigram models).
	type span struct {
		from, to int
		unk      bool
	}
	var spans []span
	for end := len(s); end > 0; {
		n := best[end]
		isUnk := m.unk >= 0 && int(n.id) == m.unk
		if isUnk && len(spans) > 0 && spans[len(spans)-1].unk {
			spans[len(spans)-1].from = n.start
		} else {
			spans = append(spans, span{n.start, end, isUnk})
		}
		end = n.start
	}
	for i := len(spans) - 1; i >= 0; i-- {
		piece := s[spans[i].from:spans[i].to]
		if id, ok := m.ids[piece]; ok {
			out = append(out, int(id))
			continue
		}
		if m.fallback && m.bytesKnown(piece) {
			for j := 0; j < len(piece); j++ {
				out = append(out, int(m.byteIDs[piece[j]]))
			}
			continue
		}
		out = append(out, m.unk) // noUnk (-1) when the model has no unk_id
	}
	return out
}

func (m *unigramModel) bytesKnown(piece string) bool {
	for j := 0; j < len(piece); j++ {
		if m.byteIDs[piece[j]] < 0 {
			return false
		}
	}
	return true
}
