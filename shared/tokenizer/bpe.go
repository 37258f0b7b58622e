package tokenizer

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"unicode/utf8"
)

// pair is an ordered pair of symbol ids.
type pair struct{ a, b int32 }

// mergeInfo is the rank of a merge and the id of the symbol it produces.
type mergeInfo struct{ rank, id int32 }

// bpeModel is a Hugging Face compatible BPE model (tokenizers' model/bpe):
// merges are applied by lowest rank first, ties by leftmost position, with
// optional byte fallback, unknown-token fusing and ignore_merges. It is safe
// for concurrent use.
type bpeModel struct {
	vocab        map[string]int
	vocabR       map[int]string
	merges       map[pair]mergeInfo
	unk          string // "" when absent
	unkID        int    // -1 when absent
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	dropout      float32
	byteIDs      [256]int // ids of the "<0xXX>" tokens, -1 when missing

	mu    sync.RWMutex
	cache map[string][]int
}

// Words longer than this (in bytes) are not cached; the cache stops growing
// at cacheCapacity entries (as tokenizers does).
const (
	cacheMaxWordLen = 256
	cacheCapacity   = 20000
)

// newBPEModel builds the model; m.prefix must be set in proto since merges
// strip it from their right part, as tokenizers does. The other option fields
// of proto are copied.
func newBPEModel(vocab map[string]int, merges [][2]string, proto bpeOptions) (*bpeModel, error) {
	m := &bpeModel{
		vocab:        vocab,
		vocabR:       make(map[int]string, len(vocab)),
		merges:       make(map[pair]mergeInfo, len(merges)),
		unk:          proto.unk,
		unkID:        -1,
		prefix:       proto.prefix,
		suffix:       proto.suffix,
		fuseUnk:      proto.fuseUnk,
		byteFallback: proto.byteFallback,
		ignoreMerges: proto.ignoreMerges,
		dropout:      proto.dropout,
		cache:        make(map[string][]int),
	}
	if id, ok := vocab[m.unk]; ok && m.unk != "" {
		m.unkID = id
	}
	for tok, id := range vocab {
		m.vocabR[id] = tok
	}
	for i, mg := range merges {
		a, ok := vocab[mg[0]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", i, mg[0], mg[1], mg[0])
		}
		b, ok := vocab[mg[1]]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): %q is not in the vocabulary", i, mg[0], mg[1], mg[1])
		}
		merged := mg[0] + strings.TrimPrefix(mg[1], m.prefix)
		id, ok := vocab[merged]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): result %q is not in the vocabulary", i, mg[0], mg[1], merged)
		}
		p := pair{int32(a), int32(b)}
		if _, dup := m.merges[p]; !dup { // the first (lowest rank) occurrence wins
			m.merges[p] = mergeInfo{rank: int32(i), id: int32(id)}
		}
	}
	m.setByteIDs()
	return m, nil
}

func (m *bpeModel) setByteIDs() {
	for b := range 256 {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
}

// bpeOptions are the optional settings of a BPE model.
type bpeOptions struct {
	unk          string
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	dropout      float32
}

// symbol is one node of the doubly linked list a word is merged in.
type symbol struct {
	id         int32
	prev, next int32
	size       int32 // bytes of the word covered; 0 once merged away
}

type mergeCand struct{ rank, pos, id int32 }

type mergeQueue []mergeCand

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(mergeCand)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// tokenize appends the ids of word to out.
func (m *bpeModel) tokenize(word string, out []int) []int {
	if word == "" {
		return out
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(out, id)
		}
	}
	useCache := m.dropout == 0 && len(word) <= cacheMaxWordLen
	if useCache {
		m.mu.RLock()
		ids, ok := m.cache[word]
		m.mu.RUnlock()
		if ok {
			return append(out, ids...)
		}
	}
	start := len(out)
	out = m.mergeWord(word, out)
	if useCache {
		ids := append([]int(nil), out[start:]...)
		m.mu.Lock()
		if len(m.cache) < cacheCapacity {
			m.cache[word] = ids
		}
		m.mu.Unlock()
	}
	return out
}

// mergeWord splits word into initial symbols and applies the merges,
// following tokenizers' Word::merge_all.
func (m *bpeModel) mergeWord(word string, out []int) []int {
	syms := make([]symbol, 0, len(word))
	add := func(id, size int) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: int32(id), prev: n - 1, next: -1, size: int32(size)})
		if n > 0 {
			syms[n-1].next = n
		}
	}
	var unkPending bool // the last added symbol is an unk that may be fused
	for i, r := range word {
		size := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, size = utf8.DecodeRuneInString(word[i:])
		}
		s := word[i : i+size]
		if m.prefix != "" && i > 0 {
			s = m.prefix + s
		}
		if m.suffix != "" && i+size == len(word) {
			s += m.suffix
		}
		if id, ok := m.vocab[s]; ok {
			add(id, size)
			unkPending = false
			continue
		}
		if m.byteFallback {
			ok := true
			for j := 0; j < size; j++ {
				if m.byteIDs[word[i+j]] < 0 {
					ok = false
					break
				}
			}
			if ok {
				for j := 0; j < size; j++ {
					add(m.byteIDs[word[i+j]], 1)
				}
				unkPending = false
				continue
			}
		}
		if m.unkID < 0 {
			continue // tokenizers drops characters it cannot represent
		}
		if m.fuseUnk && unkPending {
			syms[len(syms)-1].size += int32(size)
			continue
		}
		add(m.unkID, size)
		unkPending = true
	}

	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mi, ok := m.merges[pair{syms[i].id, syms[i+1].id}]; ok {
			q = append(q, mergeCand{rank: mi.rank, pos: int32(i), id: mi.id})
		}
	}
	heap.Init(&q)
	var skipped []mergeCand
	for q.Len() > 0 {
		top := heap.Pop(&q).(mergeCand)
		if m.dropout > 0 && rand.Float32() < m.dropout {
			skipped = append(skipped, top)
			continue
		}
		for _, s := range skipped {
			heap.Push(&q, s)
		}
		skipped = skipped[:0]
		cur := &syms[top.pos]
		if cur.size == 0 || cur.next < 0 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		if mi, ok := m.merges[pair{cur.id, right.id}]; !ok || mi.id != top.id {
			continue // stale entry
		}
		cur.id = top.id
		cur.size += right.size
		cur.next = right.next
		syms[nextPos].size = 0
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mi, ok := m.merges[pair{syms[cur.prev].id, cur.id}]; ok {
				heap.Push(&q, mergeCand{rank: mi.rank, pos: cur.prev, id: mi.id})
			}
		}
		if cur.next >= 0 {
			if mi, ok := m.merges[pair{cur.id, syms[cur.next].id}]; ok {
				heap.Push(&q, mergeCand{rank: mi.rank, pos: top.pos, id: mi.id})
			}
		}
	}
	for _, s := range syms {
		if s.size != 0 {
			out = append(out, int(s.id))
		}
	}
	return out
}
