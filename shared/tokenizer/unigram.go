package tokenizer

import (
	"fmt"
	"math"
	"slices"
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
	trie     pieceTrie        // the pieces, for the prefix search of the lattice
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
		ids:    make(map[string]int32, len(list)),
		scores: make([]float64, len(list)),
		unk:    -1,
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
	}
	m.trie = newPieceTrie(m.ids)
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
		for tn, end := int32(0), start; end < len(s); {
			if tn = m.trie.child(tn, s[end]); tn < 0 {
				break
			}
			end++
			id := m.trie.nodes[tn].id
			if id < 0 {
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

// pieceTrie is a byte trie of the pieces, its children in one sorted flat
// array: the lattice walks it from each position to find every piece that
// starts there (tokenizers' Trie::common_prefix_search).
type pieceTrie struct {
	nodes []trieNode
	edges []trieEdge // the children of node n: edges[n.first : n.first+n.count], by byte
}

type trieNode struct {
	id           int32 // piece id ending here, -1 for none
	first, count int32
}

type trieEdge struct {
	b    byte
	node int32
}

func newPieceTrie(ids map[string]int32) pieceTrie {
	// build with maps, then flatten breadth-first
	type mnode struct {
		id   int32
		kids map[byte]*mnode
	}
	root := &mnode{id: -1}
	for tok, id := range ids {
		n := root
		for i := 0; i < len(tok); i++ {
			if n.kids == nil {
				n.kids = map[byte]*mnode{}
			}
			k := n.kids[tok[i]]
			if k == nil {
				k = &mnode{id: -1}
				n.kids[tok[i]] = k
			}
			n = k
		}
		n.id = id
	}
	var t pieceTrie
	queue := []*mnode{root}
	t.nodes = append(t.nodes, trieNode{id: root.id})
	for qi := 0; qi < len(queue); qi++ {
		n := queue[qi]
		keys := make([]byte, 0, len(n.kids))
		for b := range n.kids {
			keys = append(keys, b)
		}
		slices.Sort(keys)
		t.nodes[qi].first, t.nodes[qi].count = int32(len(t.edges)), int32(len(keys))
		for _, b := range keys {
			k := n.kids[b]
			t.edges = append(t.edges, trieEdge{b: b, node: int32(len(t.nodes))})
			t.nodes = append(t.nodes, trieNode{id: k.id})
			queue = append(queue, k)
		}
	}
	return t
}

// child returns the node reached from n by byte b, or -1.
func (t *pieceTrie) child(n int32, b byte) int32 {
	nd := t.nodes[n]
	edges := t.edges[nd.first : nd.first+nd.count]
	lo, hi := 0, len(edges)
	for lo < hi {
		mid := (lo + hi) / 2
		if edges[mid].b < b {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(edges) && edges[lo].b == b {
		return edges[lo].node
	}
	return -1
}
