package task

// The language: a prompt names a product ("review of the red blender :"),
// a completion is one to four sentences, each ending in " .", built from
// these templates (slots in capitals, [optional]):
//
//	the ASPECT is [INTENSIFIER] ADJECTIVE .
//	overall it is [INTENSIFIER] ADJECTIVE .
//	i VERB it .
//	it works ADVERB .
//	FILLER .
//
// ADJECTIVE, VERB and ADVERB come from a sentiment lexicon in which every
// word has one polarity: positive, negative or neutral. Every other word
// (ASPECT, INTENSIFIER, FILLER, the template words) is neutral. The
// language has no negation, so counting lexicon words measures sentiment
// exactly.

// Polarities of lexicon words.
const (
	Negative = -1
	Neutral  = 0
	Positive = 1
)

// wordClass is one slot's vocabulary, by polarity.
type wordClass struct{ pos, neg, neu []string }

var (
	adjectives = wordClass{
		pos: []string{"good", "great", "excellent", "perfect", "solid", "sturdy", "superb", "lovely", "reliable", "fantastic"},
		neg: []string{"bad", "poor", "awful", "terrible", "flimsy", "broken", "useless", "weak", "horrible", "shoddy"},
		neu: []string{"okay", "fine", "average", "normal", "standard", "plain", "simple", "typical", "ordinary", "basic"},
	}
	verbs = wordClass{
		pos: []string{"love", "like", "enjoy", "adore", "recommend"},
		neg: []string{"hate", "dislike", "regret", "despise", "loathe"},
		neu: []string{"use", "own", "have", "got", "bought"},
	}
	adverbs = wordClass{
		pos: []string{"perfectly", "well", "smoothly", "flawlessly", "beautifully"},
		neg: []string{"poorly", "badly", "terribly", "erratically", "horribly"},
		neu: []string{"fine", "okay", "normally", "usually", "adequately"},
	}
	intensifiers = []string{"very", "really", "quite", "so", "rather", "extremely"}

	// fillers are whole neutral sentences (without the final ".").
	fillers = []string{
		"i bought it last week",
		"i use it every day",
		"it arrived on time",
		"it came in a box",
		"my wife uses it too",
		"i got it as a gift",
		"i have had it for a month",
		"it was delivered yesterday",
		"my son uses it at school",
		"i use it at work",
	}

	// generalAspects apply to every product.
	generalAspects = []string{"price", "design", "quality", "size"}

	// categories group products with the aspects their reviews talk about.
	// The last product of each category is held out: it appears in
	// base.txt (so the base model knows it) and in eval_prompts.jsonl, but
	// in no SFT, preference or training prompt.
	categories = []struct {
		products, aspects []string
	}{
		{[]string{"blender", "toaster", "kettle", "mixer", "juicer", "grinder"}, []string{"motor", "lid", "handle", "switch", "cord"}},
		{[]string{"headphones", "speaker", "earbuds", "radio", "microphone", "amplifier"}, []string{"sound", "bass", "battery", "volume", "cable"}},
		{[]string{"laptop", "tablet", "keyboard", "monitor", "printer", "router"}, []string{"screen", "touchpad", "charger", "software", "fan"}},
		{[]string{"tent", "backpack", "jacket", "bicycle", "helmet", "lantern"}, []string{"zipper", "fabric", "strap", "frame", "pocket"}},
		{[]string{"lamp", "chair", "desk", "pillow", "vacuum", "heater"}, []string{"cushion", "surface", "base", "wheel", "button"}},
		{[]string{"camera", "phone", "watch", "drone", "projector", "scanner"}, []string{"lens", "display", "app", "memory", "case"}},
	}

	// modifiers optionally precede the product in a prompt ("" for none).
	modifiers = []string{"", "black", "white", "red", "blue", "green", "silver", "new"}
)

// lexicon maps every ADJECTIVE, VERB and ADVERB word to its polarity.
var lexicon = func() map[string]int {
	m := map[string]int{}
	for _, c := range []wordClass{adjectives, verbs, adverbs} {
		for _, w := range c.pos {
			m[w] = Positive
		}
		for _, w := range c.neg {
			m[w] = Negative
		}
		for _, w := range c.neu {
			m[w] = Neutral
		}
	}
	return m
}()

// slot sets for the parser.
var (
	adjectiveSet   = setOf(adjectives.pos, adjectives.neg, adjectives.neu)
	verbSet        = setOf(verbs.pos, verbs.neg, verbs.neu)
	adverbSet      = setOf(adverbs.pos, adverbs.neg, adverbs.neu)
	intensifierSet = setOf(intensifiers)
	fillerSet      = setOf(fillers)
	aspectSet      = func() map[string]bool {
		s := setOf(generalAspects)
		for _, c := range categories {
			for _, a := range c.aspects {
				s[a] = true
			}
		}
		return s
	}()
)

func setOf(lists ...[]string) map[string]bool {
	s := map[string]bool{}
	for _, l := range lists {
		for _, w := range l {
			s[w] = true
		}
	}
	return s
}

// Polarity returns a word's sentiment: Positive, Negative, or Neutral for
// neutral lexicon words and every word outside the lexicon.
func Polarity(word string) int { return lexicon[word] }

// Products lists every product, in category order.
func Products() []string {
	var out []string
	for _, c := range categories {
		out = append(out, c.products...)
	}
	return out
}

// TrainProducts lists the products of SFT, preference and training prompts.
func TrainProducts() []string {
	var out []string
	for _, c := range categories {
		out = append(out, c.products[:len(c.products)-1]...)
	}
	return out
}

// EvalProducts lists the held-out products of eval_prompts.jsonl, one per
// category; they appear in base.txt only.
func EvalProducts() []string {
	var out []string
	for _, c := range categories {
		out = append(out, c.products[len(c.products)-1])
	}
	return out
}

// Prompt renders a prompt: Prompt("blender", "red") is
// "review of the red blender :"; an empty modifier is left out.
func Prompt(product, modifier string) string {
	if modifier == "" {
		return "review of the " + product + " :"
	}
	return "review of the " + modifier + " " + product + " :"
}
