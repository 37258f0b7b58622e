package classify

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/rlsuite/rl/datasets"
)

// Polarity is Pang & Lee's sentence polarity data (rt-polarity.pos and
// rt-polarity.neg, one review snippet a line), split as Hugging Face's
// rotten_tomatoes builds it: per polarity, lines 0-4264 train, 4265-4797
// validation, the rest test (8530/1066/1066), each line trimmed; label 0
// is neg and 1 is pos (ClassLabel names ["neg", "pos"]).
type Polarity struct {
	Train, Validation, Test []datasets.Example
	// Names are the class names, ["neg", "pos"].
	Names []string
	// Latin1Lines counts lines that were not valid UTF-8 and were decoded
	// as Latin-1 (ISO-8859-1: each byte is the code point of the same
	// value), as the Cornell original is; the UTF-8 copies count 0.
	Latin1Lines int
}

// PolarityNames are rotten_tomatoes' class names.
var PolarityNames = []string{"neg", "pos"}

// LoadPolarity reads dir/rt-polarity.pos and dir/rt-polarity.neg. Train
// holds the positive examples, then the negative ones, in file order (the
// trainer shuffles). A blank line is an error naming file:line.
func LoadPolarity(dir string) (*Polarity, error) {
	p := &Polarity{Names: PolarityNames}
	for label, name := range []string{"rt-polarity.neg", "rt-polarity.pos"} {
		path := filepath.Join(dir, name)
		lines, latin1, err := readLatin1Lines(path)
		if err != nil {
			return nil, err
		}
		p.Latin1Lines += latin1
		for i, s := range lines {
			if s == "" {
				return nil, fmt.Errorf("classify: %s:%d: empty line", path, i+1)
			}
		}
		split := func(lo, hi int) []datasets.Example {
			var out []datasets.Example
			for i := lo; i < min(hi, len(lines)); i++ {
				out = append(out, datasets.Example{Text: lines[i], Label: label, Src: datasets.Source{File: path, Line: i + 1}})
			}
			return out
		}
		// pos (label 1) first, as rotten_tomatoes.py yields them.
		if label == 1 {
			p.Train = append(split(0, 4265), p.Train...)
			p.Validation = append(split(4265, 4798), p.Validation...)
			p.Test = append(split(4798, len(lines)), p.Test...)
		} else {
			p.Train, p.Validation, p.Test = split(0, 4265), split(4265, 4798), split(4798, len(lines))
		}
	}
	return p, nil
}

// readLatin1Lines returns the trimmed lines of a file (a final line without
// "\n" included), decoding any line that is not valid UTF-8 as Latin-1, and
// the number of such lines.
func readLatin1Lines(path string) (lines []string, latin1 int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("classify: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		b := sc.Bytes()
		s := string(b)
		if !utf8.Valid(b) {
			latin1++
			r := make([]rune, len(b))
			for i, c := range b {
				r[i] = rune(c)
			}
			s = string(r)
		}
		lines = append(lines, strings.TrimSpace(s))
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("classify: %s: %w", path, err)
	}
	return lines, latin1, nil
}

// LabelFromCompletion maps a generated completion to a class id for
// classification as generation: the class whose name the trimmed
// completion equals, else the only class whose name starts with it or that
// it starts with (a one-token completion may hold part of a name); -1 when
// none or several match.
func LabelFromCompletion(completion string, names []string) int {
	c := strings.ToLower(strings.TrimSpace(completion))
	if c == "" {
		return -1
	}
	found := -1
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if c == n {
			return i
		}
		if strings.HasPrefix(n, c) || strings.HasPrefix(c, n) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}
