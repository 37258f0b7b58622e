package tokenizer

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// TrainOptions configures Train.
type TrainOptions struct {
	// VocabSize is the size of the vocabulary to learn, counting the special
	// tokens and the 256 byte symbols (default 8192). Training stops earlier
	// when no pair of symbols occurs MinFrequency times any more.
	VocabSize int
	// MinFrequency is the least number of occurrences of a pair to merge it
	// (default 2).
	MinFrequency int
	// SpecialTokens get the first ids; the first one is BOS and EOS. Nil
	// means ["<|endoftext|>"]; pass an empty slice for none.
	SpecialTokens []string
	// ModelMaxLength is written to tokenizer_config.json when positive.
	ModelMaxLength int
	// ChatTemplate is written to tokenizer_config.json when not empty.
	ChatTemplate string
}

// Train learns a GPT-2 style byte-level BPE tokenizer from texts: the GPT-2
// pre-tokenization regex without a prefix space, all 256 bytes in the
// initial alphabet (so any text encodes, without an unknown token) and the
// ByteLevel decoder. Special tokens in the texts are not learned from. Merges
// are picked by highest pair count, ties by lowest pair of ids, as the
// tokenizers BpeTrainer does. The result saves to a tokenizer.json that
// Hugging Face tokenizers loads.
//
// It does not use github.com/sugarme/tokenizer's BpeTrainer, which writes a
// stale queued count over the real pair count instead of the reverse, loses
// word positions on corpora of more than 10000 distinct words (per-worker
// sets overwrite each other), breaks count ties arbitrarily and prints to
// stdout.
func Train(texts iter.Seq[string], opts TrainOptions) (*Tokenizer, error) {
	if opts.VocabSize == 0 {
		opts.VocabSize = 8192
	}
	if opts.MinFrequency == 0 {
		opts.MinFrequency = 2
	}
	if opts.SpecialTokens == nil {
		opts.SpecialTokens = []string{"<|endoftext|>"}
	}
	if opts.MinFrequency < 0 {
		return nil, fmt.Errorf("tokenizer: train: negative MinFrequency %d", opts.MinFrequency)
	}
	if opts.ModelMaxLength < 0 {
		return nil, fmt.Errorf("tokenizer: train: negative ModelMaxLength %d", opts.ModelMaxLength)
	}
	if min := 256 + len(opts.SpecialTokens); opts.VocabSize < min {
		return nil, fmt.Errorf("tokenizer: train: VocabSize %d is less than the 256 byte symbols plus %d special tokens", opts.VocabSize, len(opts.SpecialTokens))
	}
	seen := map[string]bool{}
	var specials []addedToken
	for i, s := range opts.SpecialTokens {
		if s == "" {
			return nil, errors.New("tokenizer: train: empty special token")
		}
		if seen[s] {
			return nil, fmt.Errorf("tokenizer: train: duplicate special token %q", s)
		}
		seen[s] = true
		specials = append(specials, addedToken{ID: i, Content: s, Special: true})
	}

	counts, err := countWords(texts, newAddedMatcher(specials, nil))
	if err != nil {
		return nil, err
	}
	vocab, merges := learnBPE(counts, opts, len(specials))
	data := trainedJSON(specials, vocab, merges)
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: train: reload: %w", err)
	}
	no := false
	t.addBOS, t.addEOS = &no, &no
	t.modelMaxLength = opts.ModelMaxLength
	t.chatTemplate = opts.ChatTemplate
	if len(specials) > 0 {
		first := specialToken{content: specials[0].Content, id: 0}
		t.specials[bosIdx], t.specials[eosIdx] = first, first
	}
	decoder := map[string]any{}
	for _, s := range specials {
		decoder[strconv.Itoa(s.ID)] = map[string]any{
			"content": s.Content, "lstrip": false, "normalized": false,
			"rstrip": false, "single_word": false, "special": true,
		}
	}
	raw, err := marshalNoEscape(decoder)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: train: %w", err)
	}
	t.config = map[string]json.RawMessage{"added_tokens_decoder": raw}
	return t, nil
}

// countWords pre-tokenizes the texts on all CPUs and counts the byte-level
// words.
func countWords(texts iter.Seq[string], specials *addedMatcher) (map[string]int, error) {
	re, err := compileSplitRegex(gpt2Pattern)
	if err != nil {
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	batches := make(chan []string, workers)
	results := make([]map[string]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts := map[string]int{}
			for batch := range batches {
				for _, text := range batch {
					for _, seg := range specials.split(text) {
						if seg.id >= 0 {
							continue
						}
						parts, _ := splitBehavior(seg.text, re.find(seg.text), "Isolated", false)
						for _, p := range parts {
							counts[byteLevelString(p)]++
						}
					}
				}
			}
			results[w] = counts
		}()
	}
	const batchBytes = 256 << 10
	var batch []string
	size := 0
	for text := range texts {
		batch = append(batch, text)
		size += len(text) + 64
		if size >= batchBytes {
			batches <- batch
			batch, size = nil, 0
		}
	}
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	total := results[0]
	for _, m := range results[1:] {
		for w, c := range m {
			total[w] += c
		}
	}
	return total, nil
}

type pairCount struct {
	count int
	p     pair
}

// pairHeap pops the highest count first, ties by the lowest pair.
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	if h[i].p.a != h[j].p.a {
		return h[i].p.a < h[j].p.a
	}
	return h[i].p.b < h[j].p.b
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// learnBPE returns the vocabulary (by id, starting with nSpecial ids left
// for the special tokens, then the byte alphabet by code point) and the
// merges in order.
func learnBPE(wordCounts map[string]int, opts TrainOptions, nSpecial int) (vocab []string, merges [][2]int32) {
	vocab = make([]string, nSpecial, opts.VocabSize)
	toID := map[string]int32{}
	for _, s := range opts.SpecialTokens {
		toID[s] = int32(len(toID))
		vocab[toID[s]] = s
	}
	alphabet := make([]rune, 0, 256)
	for _, r := range byteToChar {
		alphabet = append(alphabet, r)
	}
	slices.Sort(alphabet)
	for _, r := range alphabet {
		s := string(r)
		if _, ok := toID[s]; !ok {
			toID[s] = int32(len(vocab))
			vocab = append(vocab, s)
		}
	}

	keys := make([]string, 0, len(wordCounts))
	for w := range wordCounts {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	words := make([][]int32, len(keys))
	counts := make([]int, len(keys))
	pairCounts := map[pair]int{}
	where := map[pair][]int32{}
	for i, w := range keys {
		counts[i] = wordCounts[w]
		syms := make([]int32, 0, len(w)/2)
		for _, r := range w {
			syms = append(syms, toID[string(r)])
		}
		words[i] = syms
		for j := 0; j+1 < len(syms); j++ {
			p := pair{syms[j], syms[j+1]}
			if pairCounts[p] == 0 || where[p][len(where[p])-1] != int32(i) {
				where[p] = append(where[p], int32(i))
			}
			pairCounts[p] += counts[i]
		}
	}
	h := make(pairHeap, 0, len(pairCounts))
	for p, c := range pairCounts {
		h = append(h, pairCount{c, p})
	}
	heap.Init(&h)

	visited := make([]int, len(words)) // merge step that last rewrote a word
	before := map[pair]int{}           // counts at the start of a step
	var oldPairs []pair
	for step := 1; len(vocab) < opts.VocabSize && h.Len() > 0; step++ {
		top := heap.Pop(&h).(pairCount)
		if cur := pairCounts[top.p]; cur != top.count {
			if cur > 0 {
				heap.Push(&h, pairCount{cur, top.p})
			}
			step--
			continue
		}
		if top.count < opts.MinFrequency {
			break
		}
		newTok := vocab[top.p.a] + vocab[top.p.b]
		newID, ok := toID[newTok]
		if !ok {
			newID = int32(len(vocab))
			toID[newTok] = newID
			vocab = append(vocab, newTok)
		}
		merges = append(merges, [2]int32{top.p.a, top.p.b})

		clear(before)
		note := func(p pair) {
			if _, ok := before[p]; !ok {
				before[p] = pairCounts[p]
			}
		}
		for _, wi := range where[top.p] {
			if visited[wi] == step {
				continue
			}
			visited[wi] = step
			syms, c := words[wi], counts[wi]
			oldPairs = oldPairs[:0]
			for j := 0; j+1 < len(syms); j++ {
				p := pair{syms[j], syms[j+1]}
				note(p)
				pairCounts[p] -= c
				oldPairs = append(oldPairs, p)
			}
			out := syms[:0]
			for j := 0; j < len(syms); j++ {
				if j+1 < len(syms) && syms[j] == top.p.a && syms[j+1] == top.p.b {
					out = append(out, newID)
					j++
				} else {
					out = append(out, syms[j])
				}
			}
			words[wi] = out
			for j := 0; j+1 < len(out); j++ {
				p := pair{out[j], out[j+1]}
				note(p)
				pairCounts[p] += c
				if !slices.Contains(oldPairs, p) {
					where[p] = append(where[p], wi)
				}
			}
		}
		delete(where, top.p)
		delete(pairCounts, top.p)
		for p, b := range before {
			if c := pairCounts[p]; c > b {
				heap.Push(&h, pairCount{c, p})
			} else if c == 0 {
				delete(pairCounts, p)
			}
		}
	}
	return vocab, merges
}

// trainedJSON writes a tokenizer.json in the layout Hugging Face tokenizers
// saves (compare the GPT-2 tokenizer.json).
func trainedJSON(specials []addedToken, vocab []string, merges [][2]int32) []byte {
	var b bytes.Buffer
	q := func(s string) string {
		data, _ := marshalNoEscape(s)
		return string(data)
	}
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, s := range specials {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    {\n      \"id\": %d,\n      \"content\": %s,\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n      \"normalized\": false,\n      \"special\": true\n    }", s.ID, q(s.Content))
	}
	if len(specials) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString(`],
  "normalizer": null,
  "pre_tokenizer": {
    "type": "ByteLevel",
    "add_prefix_space": false,
    "trim_offsets": true,
    "use_regex": true
  },
  "post_processor": {
    "type": "ByteLevel",
    "add_prefix_space": true,
    "trim_offsets": false,
    "use_regex": true
  },
  "decoder": {
    "type": "ByteLevel",
    "add_prefix_space": true,
    "trim_offsets": true,
    "use_regex": true
  },
  "model": {
    "type": "BPE",
    "dropout": null,
    "unk_token": null,
    "continuing_subword_prefix": null,
    "end_of_word_suffix": null,
    "fuse_unk": false,
    "byte_fallback": false,
    "ignore_merges": false,
    "vocab": {`)
	for id, tok := range vocab {
		if id > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n      %s: %d", q(tok), id)
	}
	b.WriteString("\n    },\n    \"merges\": [")
	for i, m := range merges {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n      %s", q(vocab[m[0]]+" "+vocab[m[1]]))
	}
	b.WriteString("\n    ]\n  }\n}")
	return b.Bytes()
}
