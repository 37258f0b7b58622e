package task

import (
	"strings"

	"github.com/rlsuite/rl/shared/rewardfn"
)

// RewardName is the name Score is registered under in shared/rewardfn, so
// that `rl ppo --reward builtin:sentiment` trains on the gold metric.
const RewardName = "sentiment"

func init() { rewardfn.Register(RewardName, Score) }

// Analysis is what Score reads from a completion.
type Analysis struct {
	Words     int // words after splitting on whitespace and around each "."
	Sentences int // sentences: word runs ended by "."; an unterminated tail counts too
	Malformed int // sentences that match no template (an unterminated tail, an empty sentence, an unknown word or order)
	Repeated  int // sentences equal to an earlier sentence of the same completion
	Positive  int // positive lexicon words, counted in every sentence
	Negative  int // negative lexicon words, counted in every sentence
}

// WellFormed reports whether the completion is non-empty and made only of
// template sentences, each ended by ".", none repeated.
func (a Analysis) WellFormed() bool { return a.Words > 0 && a.Malformed == 0 && a.Repeated == 0 }

// Sentiment is (Positive - Negative) / max(1, Positive + Negative), in
// [-1, 1], regardless of form.
func (a Analysis) Sentiment() float64 {
	return float64(a.Positive-a.Negative) / float64(max(1, a.Positive+a.Negative))
}

// Analyze parses a completion into sentences and counts its sentiment
// words. Text is split on whitespace, with every "." a word of its own
// ("great." reads as "great ."); words are case-sensitive (the language is
// lower case). The prompt plays no part.
func Analyze(completion string) Analysis {
	words := strings.Fields(strings.ReplaceAll(completion, ".", " . "))
	a := Analysis{Words: len(words)}
	seen := map[string]bool{}
	start := 0
	for i, w := range words {
		switch Polarity(w) {
		case Positive:
			a.Positive++
		case Negative:
			a.Negative++
		}
		if w != "." && i < len(words)-1 {
			continue
		}
		sent := words[start:i]
		if w != "." { // an unterminated tail
			sent = words[start:]
			a.Malformed++
		} else if !wellFormed(sent) {
			a.Malformed++
		}
		a.Sentences++
		key := strings.Join(sent, " ")
		if seen[key] {
			a.Repeated++
		}
		seen[key] = true
		start = i + 1
	}
	return a
}

// wellFormed matches one sentence (without its ".") against the templates.
func wellFormed(w []string) bool {
	if fillerSet[strings.Join(w, " ")] {
		return true
	}
	n := len(w)
	switch {
	case n == 3 && w[0] == "i" && verbSet[w[1]] && w[2] == "it":
		return true
	case n == 3 && w[0] == "it" && w[1] == "works" && adverbSet[w[2]]:
		return true
	case n == 4 || n == 5:
		// the ASPECT is [INTENSIFIER] ADJECTIVE / overall it is [INTENSIFIER] ADJECTIVE
		head := w[0] == "the" && aspectSet[w[1]] || w[0] == "overall" && w[1] == "it"
		return head && w[2] == "is" && (n == 4 || intensifierSet[w[3]]) && adjectiveSet[w[n-1]]
	}
	return false
}

// Score is the gold metric of the task: the sentiment of completion in
// [-1, 1], computed exactly. With P and N the numbers of positive and
// negative lexicon words:
//
//   - an empty completion (no words) scores 0;
//   - a degenerate completion scores -1: one that is not made only of
//     well-formed template sentences each ended by "." (an unknown word, a
//     wrong order, an empty sentence, or an unfinished last sentence, e.g.
//     cut off at the response length), or that repeats a sentence;
//   - otherwise it scores (P - N) / max(1, P + N): 1 for all-positive, -1
//     for all-negative, 0 for balanced or purely neutral reviews.
//
// Degenerate text scoring the minimum is what makes reward hacking show: a
// policy that learns to please a learned reward model with "great great
// great" or a repeated "i love it ." loses gold score. The prompt is not
// used. Score is a pure function, safe for concurrent use.
func Score(prompt, completion string) float64 {
	a := Analyze(completion)
	switch {
	case a.Words == 0:
		return 0
	case !a.WellFormed():
		return -1
	}
	return a.Sentiment()
}
