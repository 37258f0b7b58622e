package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiled is SentencePiece's compiled normalisation rules, the
// precompiled_charsmap of the Precompiled normalizer (T5, ALBERT, XLM-R,
// DeBERTa-v3, Pegasus): a little-endian u32 trie size, the darts-clone
// double-array trie of that many bytes, then the NUL-separated
// replacement strings the trie's values index. It is decoded and applied
// as Hugging Face's spm_precompiled crate does (src/lib.rs) and
// tokenizers' normalizers/precompiled.rs.
type precompiled struct {
	trie       []uint32
	normalized string
}

func parsePrecompiled(b64 string) (*precompiled, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	if len(data) < 4 {
		return nil, errors.New("shorter than its 4-byte trie size")
	}
	size := int(binary.LittleEndian.Uint32(data))
	if size%4 != 0 || size > len(data)-4 {
		return nil, errors.New("trie size is past the end of the data")
	}
	p := &precompiled{trie: make([]uint32, size/4)}
	for i := range p.trie {
		p.trie[i] = binary.LittleEndian.Uint32(data[4+4*i:])
	}
	rest := data[4+size:]
	if !utf8.Valid(rest) {
		return nil, errors.New("the normalized strings are not valid UTF-8")
	}
	if len(p.trie) == 0 {
		return nil, errors.New("empty trie")
	}
	p.normalized = string(rest)
	return p, nil
}

// A darts-clone unit: bit 8 has_leaf, bits 0-7 (with bit 31) the label,
// bits 0-30 a leaf's value, bits 10-31 the offset (shifted by 8 when bit 9
// is set).
func unitHasLeaf(u uint32) bool  { return u>>8&1 == 1 }
func unitValue(u uint32) int     { return int(u & (1<<31 - 1)) }
func unitLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) uint32 { return u >> 10 << ((u & (1 << 9)) >> 6) }

// firstPrefixValue is DoubleArray::common_prefix_search's first result: the
// value of the shortest key that is a prefix of key, or -1. Positions past
// the array mean no match (the crate would panic on a corrupt trie).
func (p *precompiled) firstPrefixValue(key string) int {
	pos := uint32(0)
	unit := p.trie[0]
	pos ^= unitOffset(unit)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if int(pos) >= len(p.trie) {
			return -1
		}
		unit = p.trie[pos]
		if unitLabel(unit) != uint32(c) {
			return -1
		}
		pos ^= unitOffset(unit)
		if unitHasLeaf(unit) {
			if int(pos) >= len(p.trie) {
				return -1
			}
			return unitValue(p.trie[pos])
		}
	}
	return -1
}

// transform returns the replacement of chunk, if the rules have one.
func (p *precompiled) transform(chunk string) (string, bool) {
	i := p.firstPrefixValue(chunk)
	if i < 0 || i > len(p.normalized) {
		return "", false
	}
	end := strings.IndexByte(p.normalized[i:], 0)
	if end < 0 {
		end = len(p.normalized) - i
	}
	return p.normalized[i : i+end], true
}

// normalize replaces each extended grapheme cluster shorter than 6 bytes
// that has a rule as a whole, else each of its characters that has one.
func (p *precompiled) normalize(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	state := -1
	for rest := s; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if len(cluster) < 6 {
			if r, ok := p.transform(cluster); ok {
				sb.WriteString(r)
				continue
			}
		}
		for i := 0; i < len(cluster); {
			_, n := utf8.DecodeRuneInString(cluster[i:]) // 1 for an invalid byte
			part := cluster[i : i+n]
			i += n
			if r, ok := p.transform(part); ok {
				sb.WriteString(r)
			} else {
				sb.WriteString(part)
			}
		}
	}
	return sb.String()
}

// nmtNormalize is tokenizers' Nmt normalizer (normalizers/unicode.rs,
// do_nmt), SentencePiece's nmt rules without the charsmap: ASCII control
// characters go, and tabs, newlines, U+1680, U+200B-U+200F, U+2028,
// U+2029, U+2581, U+FEFF and U+FFFD become spaces.
func nmtNormalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0x01 && r <= 0x08, r == 0x0B, r >= 0x0E && r <= 0x1F, r == 0x7F, r == 0x8F, r == 0x9F:
			return -1
		case r == 0x09, r == 0x0A, r == 0x0C, r == 0x0D, r == 0x1680, r >= 0x200B && r <= 0x200F,
			r == 0x2028, r == 0x2029, r == 0x2581, r == 0xFEFF, r == 0xFFFD:
			return ' '
		}
		return r
	}, s)
}
