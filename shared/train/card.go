package train

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/fsutil"
	"github.com/rlsuite/rl/shared/hub"
)

// CardFile is the model card every trained output folder gets.
const CardFile = "README.md"

// trainerCards are TRL's _name, _tag_names and _paper per trainer
// (trl/trainer/*_trainer.py), by the name rl's trainers give the loop.
var trainerCards = map[string]struct{ name, tag, paperTitle, paperID string }{
	"sft":      {"SFT", "sft", "", ""},
	"reward":   {"Reward", "reward-trainer", "", ""},
	"dpo":      {"DPO", "dpo", "Direct Preference Optimization: Your Language Model is Secretly a Reward Model", "2305.18290"},
	"orpo":     {"ORPO", "orpo", "ORPO: Monolithic Preference Optimization without Reference Model", "2403.07691"},
	"cpo":      {"CPO", "cpo", "Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine Translation", "2401.08417"},
	"kto":      {"KTO", "kto", "KTO: Model Alignment as Prospect Theoretic Optimization", "2402.01306"},
	"ppo":      {"PPO", "ppo", "Fine-Tuning Language Models from Human Preferences", "1909.08593"},
	"grpo":     {"GRPO", "grpo", "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models", "2402.03300"},
	"rloo":     {"RLOO", "rloo", "Back to Basics: Revisiting REINFORCE-Style Optimization for Learning from Human Feedback in LLMs", "2402.14740"},
	"classify": {"sequence classification", "text-classification", "", ""},
}

// CardCommand is the command line recorded in model cards (default: this
// process's arguments).
var CardCommand = os.Args

// cardData is the front matter, in the order huggingface_hub's
// ModelCardData writes TRL's fields (generate_model_card,
// trl/trainer/utils.py); licence: license is TRL's placeholder, license the
// base model's when its own card names one.
type cardData struct {
	BaseModel, Datasets, License, LibraryName, ModelName string
	Tags                                                 []string
	Licence                                              string
}

// yaml writes the front matter as PyYAML does for ModelCardData (block
// sequences at the key's indentation).
func (d cardData) yaml() ([]byte, error) {
	var b bytes.Buffer
	for _, kv := range [][2]string{{"base_model", d.BaseModel}, {"datasets", d.Datasets}, {"license", d.License}, {"library_name", d.LibraryName}, {"model_name", d.ModelName}} {
		if kv[1] == "" {
			continue
		}
		v, err := yamlScalar(kv[1])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s: %s\n", kv[0], v)
	}
	b.WriteString("tags:\n")
	for _, t := range d.Tags {
		v, err := yamlScalar(t)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "- %s\n", v)
	}
	fmt.Fprintf(&b, "licence: %s\n", d.Licence)
	return b.Bytes(), nil
}

// yamlScalar is s as a YAML scalar, quoted where YAML needs it.
func yamlScalar(s string) (string, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("train: model card: %w", err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// writeModelCard writes README.md into the output dir as TRL's
// create_model_card does (template trl/templates/lm_model_card.md), plus
// the command that produced the model and its final metrics. base_model
// and datasets are Hub ids only: a local folder is not named, as in TRL.
func (t *Trainer[B]) writeModelCard(final map[string]float64) error {
	b, err := t.modelCard(final)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(t.Args.OutputDir, CardFile), b, 0o644); err != nil {
		return fmt.Errorf("train: model card: %w", err)
	}
	return nil
}

func (t *Trainer[B]) modelCard(final map[string]float64) ([]byte, error) {
	info, ok := trainerCards[t.Name]
	if !ok {
		info.name, info.tag = t.Name, t.Name
	}
	d := cardData{LibraryName: "transformers", ModelName: filepath.Base(filepath.Clean(t.Args.OutputDir)), Licence: "license"}
	d.Tags = []string{"generated_from_trainer"}
	if info.tag != "" {
		d.Tags = append(d.Tags, info.tag)
	}
	d.Tags = append(d.Tags, "trl", "rl")
	var basePath string
	for _, in := range t.Inputs {
		origin := hub.Origin(in.Path)
		isHub := origin != in.Path || isHubID(in.Path)
		switch in.Flag {
		case "model":
			basePath = in.Path
			if isHub {
				d.BaseModel, _, _ = strings.Cut(origin, "@") // the repo id; the revision is not part of it
			}
		case "dataset":
			if r, _, ok := hub.ParseDatasetID(in.Path); ok && notLocal(in.Path) {
				d.Datasets = r.ID // org/name[:config]: the repo id
			}
		}
	}
	if basePath != "" {
		d.License = cardLicense(filepath.Join(basePath, CardFile))
	}
	front, err := d.yaml()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "---\n%s---\n\n# Model Card for %s\n\n", front, d.ModelName)
	switch {
	case d.BaseModel != "":
		fmt.Fprintf(&b, "This model is a fine-tuned version of [%s](https://huggingface.co/%s)", d.BaseModel, d.BaseModel)
	case basePath != "":
		fmt.Fprintf(&b, "This model is a fine-tuned version of a local model (`%s`)", basePath)
	default:
		fmt.Fprintf(&b, "This model was trained from scratch")
	}
	if d.Datasets != "" {
		fmt.Fprintf(&b, " on the [%s](https://huggingface.co/datasets/%s) dataset", d.Datasets, d.Datasets)
	}
	b.WriteString(".\nIt has been trained using [rl](https://github.com/rlsuite/rl), which follows [TRL](https://github.com/huggingface/trl).\n\n")
	b.WriteString("## Quick start\n\n```python\nfrom transformers import pipeline\n\n")
	fmt.Fprintf(&b, "generator = pipeline(\"text-generation\", model=%q)\n", d.ModelName)
	b.WriteString("output = generator([{\"role\": \"user\", \"content\": \"Hello!\"}], max_new_tokens=128, return_full_text=False)[0]\nprint(output[\"generated_text\"])\n```\n\n")
	b.WriteString("## Training procedure\n\n")
	fmt.Fprintf(&b, "This model was trained with %s", info.name)
	if info.paperID != "" {
		fmt.Fprintf(&b, ", a method introduced in [%s](https://huggingface.co/papers/%s)", info.paperTitle, info.paperID)
	}
	b.WriteString(".\n\nCommand:\n\n```sh\n" + shellJoin(CardCommand) + "\n```\n\n")
	if len(final) > 0 {
		b.WriteString("### Final metrics\n\n| metric | value |\n|---|---|\n")
		keys := make([]string, 0, len(final))
		for k := range final {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %s |\n", k, formatMetric(final[k]))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Citations\n\nCite TRL as:\n\n```bibtex\n@software{vonwerra2020trl,\n  title   = {{TRL: Transformers Reinforcement Learning}},\n  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},\n  license = {Apache-2.0},\n  url     = {https://github.com/huggingface/trl},\n  year    = {2020}\n}\n```\n")
	return b.Bytes(), nil
}

// isHubID reports whether s reads as a Hub id and is no local path.
func isHubID(s string) bool {
	_, ok := hub.ParseID(s)
	return ok && notLocal(s)
}

func notLocal(s string) bool {
	_, err := os.Stat(s)
	return err != nil
}

// cardLicense is the license in a model card's front matter, or "".
func cardLicense(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s, ok := strings.CutPrefix(string(b), "---\n")
	if !ok {
		return ""
	}
	front, _, ok := strings.Cut(s, "\n---")
	if !ok {
		return ""
	}
	var m struct {
		License any `yaml:"license"`
	}
	if yaml.Unmarshal([]byte(front), &m) != nil {
		return ""
	}
	if l, ok := m.License.(string); ok {
		return l
	}
	return ""
}

func formatMetric(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.6g", v)
}

// shellJoin quotes args for a POSIX shell.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	if len(out) > 0 {
		out[0] = filepath.Base(out[0])
	}
	return strings.Join(out, " ")
}
