// Command rtpolarity prepares Pang & Lee's sentence polarity data (Hugging
// Face's rotten_tomatoes) for `rl classify` and for classification as
// generation with `rl sft`, and scores `rl generate` output against it.
//
//	go run ./classify/rtpolarity prep -data /work/shared/data/rt-polarity -out rt
//	go run ./classify/rtpolarity score -gold rt/sft/validation.jsonl -pred gen.jsonl
//
// prep writes, for the splits train, validation and test (8530/1066/1066):
//
//	rt/classify/SPLIT.jsonl  {"text": ..., "label": "neg"|"pos"}
//	rt/sft/SPLIT.jsonl       {"prompt": "Review: ...\nSentiment:", "completion": " negative"|" positive"}
//	rt/train.txt             the training texts, one a line (for rl tokenizer train)
//	rt/sft/train.txt         the training prompts and completions (for rl tokenizer train)
//
// score reads the gold prompt-completion file and the JSONL that rl generate
// wrote for its prompts (line i answers line i), maps each generated
// completion to a class with classify.LabelFromCompletion, and prints
// accuracy, F1 (class positive), macro F1 and MCC next to the
// majority-class baseline; a completion that names no class counts as wrong.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rlsuite/rl/classify"
	"github.com/rlsuite/rl/datasets"
)

// Prompt and completions of the generation recipe.
const promptFormat = "Review: %s\nSentiment:"

var completions = []string{" negative", " positive"} // by label: 0 neg, 1 pos

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rtpolarity prep -data DIR -out DIR | score -gold FILE -pred FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "prep":
		fs := flag.NewFlagSet("prep", flag.ExitOnError)
		data := fs.String("data", "/work/shared/data/rt-polarity", "folder with rt-polarity.pos and rt-polarity.neg")
		out := fs.String("out", "rt", "output folder")
		fs.Parse(os.Args[2:])
		err = prep(*data, *out)
	case "score":
		fs := flag.NewFlagSet("score", flag.ExitOnError)
		gold := fs.String("gold", "", "prompt-completion JSONL with the gold completions")
		pred := fs.String("pred", "", "rl generate's JSONL output for the same prompts")
		fs.Parse(os.Args[2:])
		err = score(*gold, *pred)
	default:
		err = fmt.Errorf("unknown command %q (want prep or score)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtpolarity:", err)
		os.Exit(1)
	}
}

func prep(data, out string) error {
	p, err := classify.LoadPolarity(data)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(out, "classify"), filepath.Join(out, "sft")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, s := range []struct {
		name string
		exs  []datasets.Example
	}{{"train", p.Train}, {"validation", p.Validation}, {"test", p.Test}} {
		var cls, sft []any
		for _, e := range s.exs {
			cls = append(cls, map[string]string{"text": e.Text, "label": p.Names[e.Label]})
			sft = append(sft, map[string]string{"prompt": fmt.Sprintf(promptFormat, e.Text), "completion": completions[e.Label]})
		}
		if err := writeJSONL(filepath.Join(out, "classify", s.name+".jsonl"), cls); err != nil {
			return err
		}
		if err := writeJSONL(filepath.Join(out, "sft", s.name+".jsonl"), sft); err != nil {
			return err
		}
	}
	var txt, sftTxt strings.Builder
	for _, e := range p.Train {
		txt.WriteString(e.Text + "\n")
		sftTxt.WriteString(fmt.Sprintf(promptFormat, e.Text) + completions[e.Label] + "\n")
	}
	if err := os.WriteFile(filepath.Join(out, "train.txt"), []byte(txt.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "sft", "train.txt"), []byte(sftTxt.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("train %d, validation %d, test %d examples; %d lines decoded as Latin-1 (invalid UTF-8)\n",
		len(p.Train), len(p.Validation), len(p.Test), p.Latin1Lines)
	return nil
}

func writeJSONL(path string, rows []any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(w.Flush(), f.Close())
}

// readField reads one string field of every line of a JSONL file.
func readField(path, field string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out []string
	for line := 1; sc.Scan(); line++ {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		s, ok := rec[field].(string)
		if !ok {
			return nil, fmt.Errorf("%s:%d: no string %q field", path, line, field)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func score(goldPath, predPath string) error {
	gold, err := readField(goldPath, "completion")
	if err != nil {
		return err
	}
	gen, err := readField(predPath, "completion")
	if err != nil {
		return err
	}
	if len(gold) != len(gen) {
		return fmt.Errorf("%s has %d lines but %s %d", goldPath, len(gold), predPath, len(gen))
	}
	names := slices.Clone(completions)
	var labels, preds []int
	invalid := 0
	for i := range gold {
		l := classify.LabelFromCompletion(gold[i], names)
		if l < 0 {
			return fmt.Errorf("%s:%d: gold completion %q is not one of %q", goldPath, i+1, gold[i], names)
		}
		p := classify.LabelFromCompletion(gen[i], names)
		if p < 0 {
			invalid++
			p = 1 - l // names no class: wrong
		}
		labels, preds = append(labels, l), append(preds, p)
	}
	s := classify.Evaluate(preds, labels, 2)
	b := classify.Evaluate(classify.Constant(classify.Majority(labels), len(labels)), labels, 2)
	fmt.Printf("examples %d, completions naming no class %d\n", len(labels), invalid)
	fmt.Printf("accuracy %.4f  f1 %.4f  f1_macro %.4f  matthews_correlation %.4f\n", s.Accuracy, s.F1, s.F1Macro, s.MCC)
	fmt.Printf("majority baseline: accuracy %.4f  f1 %.4f  matthews_correlation %.4f\n", b.Accuracy, b.F1, b.MCC)
	return nil
}
