package textmetrics

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// jieba's data (jieba 0.42.1, MIT, Sun Junyi; jiebadata/LICENSE), written by
// tools/goldens/jieba_data.py from jieba's own dict.txt and finalseg model.
var (
	//go:embed jiebadata/dict.txt.gz
	jiebaDictGz []byte
	//go:embed jiebadata/hmm.txt.gz
	jiebaHMMGz []byte
)

// jiebaModel is jieba's prefix dictionary (FREQ: every word with its
// frequency, every prefix of a word with 0 unless it is a word too), its
// total, and the HMM of finalseg for words outside the dictionary.
type jiebaModel struct {
	freq     map[string]int
	logTotal float64
	start    [4]float64
	trans    [4][4]float64 // trans[from][to]; minFloat where jieba has none
	emit     [4]map[rune]float64
}

// the HMM states in jieba's order of comparison (max over (prob, state)
// tuples breaks ties by the state's letter): B < E < M < S.
const (
	stB = iota
	stE
	stM
	stS
)

// minFloat is finalseg's MIN_FLOAT, the log-probability of anything unseen.
const minFloat = -3.14e100

// prevStatus is finalseg's PrevStatus: the states that may precede each.
var prevStatus = [4][2]int{stB: {stE, stS}, stE: {stB, stM}, stM: {stM, stB}, stS: {stS, stE}}

var (
	jiebaOnce sync.Once
	jiebaData *jiebaModel
	jiebaErr  error
)

// loadJieba parses the embedded data once (about 0.5 s, 60 MB).
func loadJieba() (*jiebaModel, error) {
	jiebaOnce.Do(func() { jiebaData, jiebaErr = parseJieba(jiebaDictGz, jiebaHMMGz) })
	return jiebaData, jiebaErr
}

func gunzipLines(b []byte, name string, fn func(line string) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("textmetrics: jieba %s: %w", name, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(sc.Text()); err != nil {
			return fmt.Errorf("textmetrics: jieba %s line %d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("textmetrics: jieba %s: %w", name, err)
	}
	return nil
}

func parseJieba(dict, hmm []byte) (*jiebaModel, error) {
	m := &jiebaModel{freq: make(map[string]int, 600000)}
	total := 0
	// Tokenizer.gen_pfdict: FREQ[word] = freq (a repeated word keeps its
	// last frequency, the total counts every line), prefixes at 0.
	err := gunzipLines(dict, "dict", func(line string) error {
		word, f, ok := strings.Cut(line, " ")
		if !ok {
			return fmt.Errorf("want \"word freq\", got %q", line)
		}
		freq, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		m.freq[word] = freq
		total += freq
		for i := range word {
			if i > 0 {
				if _, ok := m.freq[word[:i]]; !ok {
					m.freq[word[:i]] = 0
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.logTotal = math.Log(float64(total))
	for i := range m.trans {
		for j := range m.trans[i] {
			m.trans[i][j] = minFloat
		}
		m.emit[i] = map[rune]float64{}
	}
	state := func(s string) (int, error) {
		if i := strings.Index("BEMS", s); len(s) == 1 && i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("unknown state %q", s)
	}
	err = gunzipLines(hmm, "hmm", func(line string) error {
		f := strings.Split(line, " ")
		p, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return err
		}
		s, err := state(f[1])
		if err != nil {
			return err
		}
		switch {
		case f[0] == "start" && len(f) == 3:
			m.start[s] = p
		case f[0] == "trans" && len(f) == 4:
			t, err := state(f[2])
			if err != nil {
				return err
			}
			m.trans[s][t] = p
		case f[0] == "emit" && len(f) == 4 && utf8.RuneCountInString(f[2]) == 1:
			r, _ := utf8.DecodeRuneInString(f[2])
			m.emit[s][r] = p
		default:
			return fmt.Errorf("bad line %q", line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// JiebaCut segments s as jieba.cut(s) does by default (jieba 0.42.1:
// accurate mode, HMM on): runs of CJK ideographs (U+4E00-U+9FD5), ASCII
// letters, digits and "+#&._%-" are cut by the dictionary's most probable
// route, runs of characters outside the dictionary by the HMM; every
// whitespace character (or "\r\n") is a token, and so is every other
// character. Joined, the tokens are s again.
func JiebaCut(s string) ([]string, error) {
	m, err := loadJieba()
	if err != nil {
		return nil, err
	}
	var out []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && isJiebaHan(rs[j]) {
			j++
		}
		if j > i { // a re_han_default block
			out = m.cutDAG(rs[i:j], out)
			i = j
			continue
		}
		// re_skip_default ("\r\n|\s") splits the rest; whitespace is kept
		// as tokens, anything else yields one token per character
		if rs[i] == '\r' && i+1 < len(rs) && rs[i+1] == '\n' {
			out = append(out, "\r\n")
			i += 2
			continue
		}
		out = append(out, string(rs[i]))
		i++
	}
	return out, nil
}

// isJiebaHan is re_han_default's class: [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-].
func isJiebaHan(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FD5 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("+#&._%-", r)
}

// dag is Tokenizer.get_DAG: for each start k the ends i of the dictionary
// words sentence[k:i+1] (k alone when there is none).
func (m *jiebaModel) dag(s []rune) [][]int {
	d := make([][]int, len(s))
	for k := range s {
		for i := k; i < len(s); i++ {
			f, ok := m.freq[string(s[k:i+1])]
			if !ok {
				break
			}
			if f > 0 {
				d[k] = append(d[k], i)
			}
		}
		if len(d[k]) == 0 {
			d[k] = []int{k}
		}
	}
	return d
}

// route is Tokenizer.calc: the best log-probability of s[idx:] and the
// end of its first word, by dynamic programming from the end; ties go to
// the longer word (Python's max over (logp, x) tuples).
func (m *jiebaModel) route(s []rune) []int {
	d := m.dag(s)
	n := len(s)
	best := make([]float64, n+1)
	end := make([]int, n+1)
	for idx := n - 1; idx >= 0; idx-- {
		first := true
		for _, x := range d[idx] {
			f := m.freq[string(s[idx:x+1])]
			if f == 0 {
				f = 1 // FREQ.get(word) or 1
			}
			p := math.Log(float64(f)) - m.logTotal + best[x+1]
			if first || p > best[idx] || p == best[idx] && x > end[idx] {
				best[idx], end[idx], first = p, x, false
			}
		}
	}
	return end
}

// cutDAG is Tokenizer.__cut_DAG: dictionary words as routed; runs of
// single characters go to finalseg's HMM unless the run is a word itself.
func (m *jiebaModel) cutDAG(s []rune, out []string) []string {
	end := m.route(s)
	var buf []rune
	flush := func() {
		switch {
		case len(buf) == 0:
		case len(buf) == 1:
			out = append(out, string(buf))
		case m.freq[string(buf)] == 0:
			out = m.finalseg(buf, out)
		default:
			for _, r := range buf {
				out = append(out, string(r))
			}
		}
		buf = buf[:0]
	}
	for x := 0; x < len(s); {
		y := end[x] + 1
		if y-x == 1 {
			buf = append(buf, s[x])
		} else {
			flush()
			out = append(out, string(s[x:y]))
		}
		x = y
	}
	flush()
	return out
}

// finalseg is jieba.finalseg.cut: runs of CJK ideographs (U+4E00-U+9FD5)
// are cut by the HMM; in the rest, runs matching
// [a-zA-Z0-9]+(?:\.\d+)?%? are tokens and so is each stretch between them.
func (m *jiebaModel) finalseg(s []rune, out []string) []string {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= 0x4E00 && s[j] <= 0x9FD5 {
			j++
		}
		if j > i {
			out = m.viterbiCut(s[i:j], out)
			i = j
			continue
		}
		for j < len(s) && !(s[j] >= 0x4E00 && s[j] <= 0x9FD5) {
			j++
		}
		out = finalsegSkip(s[i:j], out)
		i = j
	}
	return out
}

// finalsegSkip splits a non-ideograph run by finalseg's re_skip.
func finalsegSkip(s []rune, out []string) []string {
	alnum := func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' }
	digit := func(r rune) bool { return r >= '0' && r <= '9' } // the run holds ASCII only
	last := 0
	for i := 0; i < len(s); {
		if !alnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && alnum(s[j]) {
			j++
		}
		if j+1 < len(s) && s[j] == '.' && digit(s[j+1]) { // (?:\.\d+)?
			j += 2
			for j < len(s) && digit(s[j]) {
				j++
			}
		}
		if j < len(s) && s[j] == '%' {
			j++
		}
		if i > last {
			out = append(out, string(s[last:i]))
		}
		out = append(out, string(s[i:j]))
		last, i = j, j
	}
	if last < len(s) {
		out = append(out, string(s[last:]))
	}
	return out
}

// viterbiCut is finalseg.__cut: the most probable BMES tags (finalseg's
// viterbi, ties broken by the larger state letter as Python's max over
// tuples), then words from B..E and S.
func (m *jiebaModel) viterbiCut(s []rune, out []string) []string {
	n := len(s)
	emit := func(st int, r rune) float64 {
		if p, ok := m.emit[st][r]; ok {
			return p
		}
		return minFloat
	}
	v := make([][4]float64, n)
	back := make([][4]int, n)
	for y := range 4 {
		v[0][y] = m.start[y] + emit(y, s[0])
	}
	for t := 1; t < n; t++ {
		for y := range 4 {
			em := emit(y, s[t])
			bestP, bestS := 0.0, -1
			for _, y0 := range prevStatus[y] {
				p := v[t-1][y0] + m.trans[y0][y] + em
				if bestS < 0 || p > bestP || p == bestP && y0 > bestS {
					bestP, bestS = p, y0
				}
			}
			v[t][y], back[t][y] = bestP, bestS
		}
	}
	state := stE
	if p := v[n-1][stS]; p >= v[n-1][stE] { // max over (V, y) for y in "ES"
		state = stS
	}
	tags := make([]int, n)
	for t := n - 1; t >= 0; t-- {
		tags[t] = state
		state = back[t][state]
	}
	begin, next := 0, 0
	for i, tag := range tags {
		switch tag {
		case stB:
			begin = i
		case stE:
			out = append(out, string(s[begin:i+1]))
			next = i + 1
		case stS:
			out = append(out, string(s[i]))
			next = i + 1
		}
	}
	if next < n {
		out = append(out, string(s[next:]))
	}
	return out
}
