package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/rlsuite/rl/shared/fsutil"
)

// File names Write creates in its directory.
const (
	BaseFile        = "base.txt"           // pretraining text: one "prompt completion" line per review, balanced sentiment
	SFTFile         = "sft.jsonl"          // {"prompt", "completion"}, sentiment skewed positive
	PrefsFile       = "prefs.jsonl"        // {"prompt", "chosen", "rejected"}, chosen scores higher
	PromptsFile     = "prompts.jsonl"      // {"prompt"}: training prompts (PPO)
	EvalPromptsFile = "eval_prompts.jsonl" // {"prompt"}: held-out products, for the gold metric of each stage
)

// Options sizes the generated files; the zero value gives the defaults.
type Options struct {
	// Seed makes every file deterministic; each file draws from its own
	// PCG stream, so changing one size leaves the other files unchanged.
	// This defaults to 0 (a seed like any other).
	Seed uint64
	// BaseLines is the number of lines of base.txt. This defaults to 30000.
	BaseLines int
	// SFTExamples is the number of lines of sft.jsonl. This defaults to 5000.
	SFTExamples int
	// PrefPairs is the number of lines of prefs.jsonl. This defaults to 5000.
	PrefPairs int
	// TrainPrompts is the number of lines of prompts.jsonl. This defaults to 1024.
	TrainPrompts int
	// EvalPrompts is the number of lines of eval_prompts.jsonl. This
	// defaults to 48: each held-out product with each modifier once.
	EvalPrompts int
}

// Defaults of Options.
const (
	DefaultBaseLines    = 30000
	DefaultSFTExamples  = 5000
	DefaultPrefPairs    = 5000
	DefaultTrainPrompts = 1024
	DefaultEvalPrompts  = 48
)

func (o Options) withDefaults() (Options, error) {
	var errs []error
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"BaseLines", &o.BaseLines, DefaultBaseLines},
		{"SFTExamples", &o.SFTExamples, DefaultSFTExamples},
		{"PrefPairs", &o.PrefPairs, DefaultPrefPairs},
		{"TrainPrompts", &o.TrainPrompts, DefaultTrainPrompts},
		{"EvalPrompts", &o.EvalPrompts, DefaultEvalPrompts},
	} {
		switch {
		case *f.v < 0:
			errs = append(errs, fmt.Errorf("task: %s must not be negative, got %d", f.name, *f.v))
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return o, errors.Join(errs...)
}

// Files are the paths Write created.
type Files struct {
	Dir, Base, SFT, Prefs, Prompts, EvalPrompts string
}

// PromptCompletion is one line of sft.jsonl.
type PromptCompletion struct {
	Prompt     string `json:"prompt"`
	Completion string `json:"completion"`
}

// Preference is one line of prefs.jsonl (TRL's explicit-prompt preference format).
type Preference struct {
	Prompt   string `json:"prompt"`
	Chosen   string `json:"chosen"`
	Rejected string `json:"rejected"`
}

// PromptOnly is one line of prompts.jsonl and eval_prompts.jsonl.
type PromptOnly struct {
	Prompt string `json:"prompt"`
}

// PCG streams, one per file.
const (
	streamBase uint64 = iota + 0x7265766965770000 // "review"
	streamSFT
	streamPrefs
	streamPrompts
	streamEval
)

// Write generates the task's files into dir (created if needed), each
// written atomically:
//
//   - base.txt: BaseLines reviews "PROMPT COMPLETION" of every product
//     (held-out ones included), with balanced sentiment: mean Score ~0;
//   - sft.jsonl: SFTExamples reviews of training products whose
//     completions skew positive (mean Score ~+0.3);
//   - prefs.jsonl: PrefPairs pairs of balanced completions for the same
//     prompt, chosen scoring strictly higher than rejected (ties are
//     redrawn);
//   - prompts.jsonl: TrainPrompts prompts of training products;
//   - eval_prompts.jsonl: EvalPrompts prompts of the held-out products
//     (EvalProducts), which appear in base.txt but in no other file.
//
// Completions start with a space (" the motor is great . i love it ."), so
// prompt + completion is the base.txt line.
func Write(dir string, opts Options) (Files, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("task: %w", err)
	}
	f := Files{
		Dir:         dir,
		Base:        filepath.Join(dir, BaseFile),
		SFT:         filepath.Join(dir, SFTFile),
		Prefs:       filepath.Join(dir, PrefsFile),
		Prompts:     filepath.Join(dir, PromptsFile),
		EvalPrompts: filepath.Join(dir, EvalPromptsFile),
	}
	all, train := Products(), TrainProducts()
	writers := []struct {
		path   string
		stream uint64
		fn     func(g *generator, w io.Writer) error
	}{
		{f.Base, streamBase, func(g *generator, w io.Writer) error {
			for range o.BaseLines {
				p := g.prompt(all)
				if _, err := fmt.Fprintf(w, "%s%s\n", p.text, g.review(p.product, balanced)); err != nil {
					return err
				}
			}
			return nil
		}},
		{f.SFT, streamSFT, func(g *generator, w io.Writer) error {
			return writeJSONL(w, o.SFTExamples, func() any {
				p := g.prompt(train)
				return PromptCompletion{p.text, g.review(p.product, positiveSkew)}
			})
		}},
		{f.Prefs, streamPrefs, func(g *generator, w io.Writer) error {
			return writeJSONL(w, o.PrefPairs, func() any {
				p := g.prompt(train)
				for {
					a, b := g.review(p.product, balanced), g.review(p.product, balanced)
					sa, sb := Score(p.text, a), Score(p.text, b)
					switch {
					case sa > sb:
						return Preference{p.text, a, b}
					case sb > sa:
						return Preference{p.text, b, a}
					}
				}
			})
		}},
		{f.Prompts, streamPrompts, func(g *generator, w io.Writer) error {
			return writeJSONL(w, o.TrainPrompts, func() any { return PromptOnly{g.prompt(train).text} })
		}},
		{f.EvalPrompts, streamEval, func(g *generator, w io.Writer) error {
			next := g.cycle(EvalProducts())
			return writeJSONL(w, o.EvalPrompts, func() any { return PromptOnly{next()} })
		}},
	}
	for _, wr := range writers {
		g := &generator{r: rand.New(rand.NewPCG(o.Seed, wr.stream))}
		if err := fsutil.WriteFileFunc(wr.path, func(w io.Writer) error { return wr.fn(g, w) }); err != nil {
			return Files{}, fmt.Errorf("task: write %s: %w", wr.path, err)
		}
	}
	return f, nil
}

func writeJSONL(w io.Writer, n int, next func() any) error {
	enc := json.NewEncoder(w)
	for range n {
		if err := enc.Encode(next()); err != nil {
			return err
		}
	}
	return nil
}

// tone gives the probabilities that a sentiment slot (ADJECTIVE, VERB,
// ADVERB) takes a positive or a negative word; the rest is neutral.
type tone struct{ pos, neg float64 }

var (
	positiveTone = tone{pos: 0.75, neg: 0.10}
	negativeTone = tone{pos: 0.10, neg: 0.75}
	mixedTone    = tone{pos: 0.40, neg: 0.40}
)

// toneMix weights the tones a review is drawn with.
type toneMix struct{ pos, neg, mixed float64 }

var (
	// balanced is symmetric, so its mean Score is 0 in expectation.
	balanced = toneMix{pos: 0.35, neg: 0.35, mixed: 0.30}
	// positiveSkew gives a mean Score of about +0.3.
	positiveSkew = toneMix{pos: 0.55, neg: 0.15, mixed: 0.30}
)

type generator struct{ r *rand.Rand }

type prompt struct{ product, text string }

func (g *generator) pick(words []string) string { return words[g.r.IntN(len(words))] }

// prompt draws a product from products and a modifier.
func (g *generator) prompt(products []string) prompt {
	p := g.pick(products)
	return prompt{p, Prompt(p, g.pick(modifiers))}
}

// cycle returns every (product, modifier) prompt once in a shuffled order,
// then again in a new order, and so on.
func (g *generator) cycle(products []string) func() string {
	var all []string
	for _, p := range products {
		for _, m := range modifiers {
			all = append(all, Prompt(p, m))
		}
	}
	i := len(all)
	return func() string {
		if i == len(all) {
			g.r.Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
			i = 0
		}
		i++
		return all[i-1]
	}
}

// word draws from a slot's vocabulary with the tone's polarity odds.
func (g *generator) word(c wordClass, t tone) string {
	switch u := g.r.Float64(); {
	case u < t.pos:
		return g.pick(c.pos)
	case u < t.pos+t.neg:
		return g.pick(c.neg)
	}
	return g.pick(c.neu)
}

func (g *generator) adjective(t tone) string {
	if g.r.Float64() < 0.3 {
		return g.pick(intensifiers) + " " + g.word(adjectives, t)
	}
	return g.word(adjectives, t)
}

// review draws a completion: a tone from mix, then two to four distinct
// sentences, the last an "overall" verdict three times in ten.
func (g *generator) review(product string, mix toneMix) string {
	t := mixedTone
	switch u := g.r.Float64(); {
	case u < mix.pos:
		t = positiveTone
	case u < mix.pos+mix.neg:
		t = negativeTone
	}
	aspects := aspectsOf(product)
	g.r.Shuffle(len(aspects), func(a, b int) { aspects[a], aspects[b] = aspects[b], aspects[a] })
	n := 2 + g.r.IntN(3)
	var sents []string
	seen := map[string]bool{}
	for len(sents) < n {
		var s string
		switch k := g.r.IntN(9); {
		case len(sents) == n-1 && g.r.Float64() < 0.3:
			s = "overall it is " + g.adjective(t)
		case k < 4 && len(aspects) > 0:
			s = "the " + aspects[0] + " is " + g.adjective(t)
			aspects = aspects[1:]
		case k < 6:
			s = "i " + g.word(verbs, t) + " it"
		case k < 8:
			s = "it works " + g.word(adverbs, t)
		default:
			s = g.pick(fillers)
		}
		if !seen[s] {
			seen[s] = true
			sents = append(sents, s+" .")
		}
	}
	return " " + strings.Join(sents, " ")
}

// aspectsOf returns a fresh list of the aspects a product's reviews
// mention: its category's, then the general ones.
func aspectsOf(product string) []string {
	for _, c := range categories {
		for _, p := range c.products {
			if p == product {
				return append(append([]string(nil), c.aspects...), generalAspects...)
			}
		}
	}
	return append([]string(nil), generalAspects...)
}
