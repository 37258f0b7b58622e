package cliconf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

type lossMode string

type trainArgs struct {
	OutputDir    string        `yaml:"output_dir" help:"Where checkpoints and logs go."`
	LearningRate float64       `yaml:"learning_rate" help:"Initial AdamW learning rate."`
	MaxSteps     int           `yaml:"max_steps" help:"Stop after this many optimiser steps; -1 for epochs."`
	Seed         int64         `yaml:"seed" help:"Random seed."`
	BF16         bool          `yaml:"bf16" help:"Train in bfloat16."`
	SaveEvery    time.Duration `yaml:"save_every" help:"Checkpoint interval."`
}

type sampleConfig struct {
	trainArgs   `yaml:",inline"`
	Beta        float64   "yaml:\"beta\" help:\"KL coefficient, the `beta` of the DPO paper.\""
	LossType    []string  `yaml:"loss_type" help:"Loss terms to sum."`
	LossWeights []float64 `yaml:"loss_weights" help:"Weight of each loss term."`
	MaxGradNorm *float64  `yaml:"max_grad_norm" help:"Clip gradients to this norm; none to disable."`
	MaxLength   *int      `yaml:"max_length" help:"Truncate sequences to this many tokens."`
	Mode        lossMode  `yaml:"mode" help:"Loss mode."`
	Name        string    `yaml:"name"`
	Skipped     string    `yaml:"-"`
	internal    int
}

func defaultConfig() sampleConfig {
	return sampleConfig{
		trainArgs: trainArgs{OutputDir: "out", LearningRate: 5e-5, MaxSteps: -1, Seed: 42, SaveEvery: 30 * time.Minute},
		Beta:      0.1,
		LossType:  []string{"sigmoid"},
		Mode:      "mean",
	}
}

func ptr[T any](v T) *T { return &v }

// run parses args (and, when yamlText is not "", a --config file holding it) into defaultConfig().
func run(t *testing.T, yamlText string, args ...string) (sampleConfig, error) {
	t.Helper()
	cfg := defaultConfig()
	if yamlText != "" {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	app := &cli.App{
		Name:   "rl",
		Flags:  Flags(defaultConfig()),
		Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
		Action: func(c *cli.Context) error { return Load(c, &cfg) },
	}
	err := app.Run(append([]string{"rl"}, args...))
	return cfg, err
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		args []string
		want func(c *sampleConfig)
	}{
		{"defaults", "", nil, func(c *sampleConfig) {}},
		{"yaml overrides defaults", "learning_rate: 1.0e-6\nmax_steps: 100\nbf16: true\nbeta: 0.5\nmode: sum\nsave_every: 1h\n", nil, func(c *sampleConfig) {
			c.LearningRate, c.MaxSteps, c.BF16, c.Beta, c.Mode, c.SaveEvery = 1e-6, 100, true, 0.5, "sum", time.Hour
		}},
		{"flags override yaml", "learning_rate: 1.0e-6\nmax_steps: 100\n", []string{"--learning-rate", "3e-4"}, func(c *sampleConfig) {
			c.LearningRate, c.MaxSteps = 3e-4, 100
		}},
		{"underscore alias", "", []string{"--learning_rate=2e-5", "--output_dir", "runs/x", "--seed", "7"}, func(c *sampleConfig) {
			c.LearningRate, c.OutputDir, c.Seed = 2e-5, "runs/x", 7
		}},
		{"bool switch and explicit false", "bf16: true\n", []string{"--bf16=false"}, func(c *sampleConfig) { c.BF16 = false }},
		{"bare bool switch", "", []string{"--bf16"}, func(c *sampleConfig) { c.BF16 = true }},
		{"duration flag", "", []string{"--save-every", "90s"}, func(c *sampleConfig) { c.SaveEvery = 90 * time.Second }},
		{"yaml flag spelling", "learning-rate: 0.25\n", nil, func(c *sampleConfig) { c.LearningRate = 0.25 }},
		{"empty yaml file", "# nothing\n", nil, func(c *sampleConfig) {}},

		{"pointers nil by default", "", nil, func(c *sampleConfig) {}},
		{"pointer set by flag", "", []string{"--max-grad-norm", "1.5", "--max-length", "512"}, func(c *sampleConfig) {
			c.MaxGradNorm, c.MaxLength = ptr(1.5), ptr(512)
		}},
		{"pointer set by yaml", "max_grad_norm: 0.5\nmax_length: 1024\n", nil, func(c *sampleConfig) {
			c.MaxGradNorm, c.MaxLength = ptr(0.5), ptr(1024)
		}},
		{"pointer reset by flag none", "max_grad_norm: 0.5\n", []string{"--max-grad-norm", "none"}, func(c *sampleConfig) {}},
		{"yaml null", "max_grad_norm: null\nmax_length: ~\nname: null\nloss_type: null\n", nil, func(c *sampleConfig) { c.LossType = []string{} }},

		{"slice by comma", "", []string{"--loss-type", "sigmoid,sft", "--loss-weights", "1, 0.5"}, func(c *sampleConfig) {
			c.LossType, c.LossWeights = []string{"sigmoid", "sft"}, []float64{1, 0.5}
		}},
		{"slice repeated", "", []string{"--loss-type", "hinge", "--loss_type", "sft", "--loss-weights", "1", "--loss-weights", "2"}, func(c *sampleConfig) {
			c.LossType, c.LossWeights = []string{"hinge", "sft"}, []float64{1, 2}
		}},
		{"slice from yaml list and scalar", "loss_type: [ipo, sft]\nloss_weights: 0.5\n", nil, func(c *sampleConfig) {
			c.LossType, c.LossWeights = []string{"ipo", "sft"}, []float64{0.5}
		}},
		{"slice flag replaces yaml list", "loss_type: [ipo, sft]\n", []string{"--loss-type=bco_pair"}, func(c *sampleConfig) {
			c.LossType = []string{"bco_pair"}
		}},
		{"slice emptied", "", []string{"--loss-type="}, func(c *sampleConfig) { c.LossType = []string{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := run(t, tt.yaml, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := defaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		args []string
		want []string // substrings of the error
	}{
		{"unknown key with suggestion", "beta: 0.2\nlearnig_rate: 1\n", nil, []string{"config.yaml:2: unknown key \"learnig_rate\"; did you mean \"learning_rate\"?"}},
		{"unknown key without suggestion", "wandb_project: x\n", nil, []string{"config.yaml:1: unknown key \"wandb_project\""}},
		{"several unknown keys", "lr: 1\nbeta: 0.2\nmax_step: 3\n", nil, []string{"config.yaml:1: unknown key \"lr\"", "config.yaml:3: unknown key \"max_step\"; did you mean \"max_steps\"?"}},
		{"bad float in yaml", "learning_rate: fast\n", nil, []string{`config.yaml:1: key "learning_rate": want a number, got "fast"`}},
		{"float for int in yaml", "\nmax_steps: 1.5\n", nil, []string{`config.yaml:2: key "max_steps": want an integer, got "1.5"`}},
		{"list for scalar in yaml", "beta: [1, 2]\n", nil, []string{`config.yaml:1: key "beta": want a number, got a list`}},
		{"bad list item in yaml", "loss_weights: [1, x]\n", nil, []string{`key "loss_weights": want a number, got "x"`}},
		{"null for number in yaml", "beta: null\n", nil, []string{`key "beta": want a number, got null`}},
		{"repeated key in yaml", "beta: 1\nbeta: 2\n", nil, []string{`config.yaml:2: key "beta" repeats the one on line 1`}},
		{"not a mapping", "- a\n- b\n", nil, []string{"config.yaml:1: want a mapping of settings"}},
		{"yaml syntax", "beta: [1\n", nil, []string{"config.yaml:"}},
		{"bad flag value", "", []string{"--max-steps", "ten"}, []string{`invalid value "ten" for flag -max-steps: want an integer, got "ten"`}},
		{"bad pointer flag value", "", []string{"--max-grad-norm", "big"}, []string{`flag -max-grad-norm: want a number or none, got "big"`}},
		{"bad duration flag", "", []string{"--save-every", "10"}, []string{`flag -save-every: want a duration such as 90s or 1h30m`}},
		{"bad bool flag", "", []string{"--bf16=yes please"}, []string{`"yes please" for -bf16`}},
		{"missing config file", "", []string{"--config", "/nonexistent/c.yaml"}, []string{"/nonexistent/c.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.yaml, tt.args...)
			if err == nil {
				t.Fatalf("got nil error, want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestFlags(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxGradNorm = ptr(1.0)
	type flagInfo struct{ Names, Usage string }
	var got []flagInfo
	for _, f := range Flags(&cfg) {
		usage := ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			usage = d.GetUsage()
		}
		got = append(got, flagInfo{strings.Join(f.Names(), ","), usage})
	}
	want := []flagInfo{
		{"config", "YAML config file (keys spelled like learning_rate); flags given on the command line override it"},
		{"output-dir", "Where checkpoints and logs go. (default out)"},
		{"learning-rate", "Initial AdamW learning rate. (default 5e-05)"},
		{"max-steps", "Stop after this many optimiser steps; -1 for epochs. (default -1)"},
		{"seed", "Random seed. (default 42)"},
		{"bf16", "Train in bfloat16. (default false)"},
		{"save-every", "Checkpoint interval. (default 30m0s)"},
		{"beta", "KL coefficient, the 'beta' of the DPO paper. (default 0.1)"},
		{"loss-type", "Loss terms to sum. (default sigmoid)"},
		{"loss-weights", "Weight of each loss term. (default none)"},
		{"max-grad-norm", "Clip gradients to this norm; none to disable. (default 1)"},
		{"max-length", "Truncate sequences to this many tokens. (default none)"},
		{"mode", "Loss mode. (default mean)"},
		{"name", `(default "")`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestHelpText(t *testing.T) {
	var out bytes.Buffer
	app := &cli.App{Name: "rl", Flags: Flags(defaultConfig()), Writer: &out, Action: func(*cli.Context) error { return nil }}
	if err := app.Run([]string{"rl", "--help"}); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, want := range []string{
		"--learning-rate value",
		"Initial AdamW learning rate. (default 5e-05)",
		"--bf16 ",
		"Train in bfloat16. (default false)",
		"--loss-type value [ --loss-type value ]",
		"Clip gradients to this norm; none to disable. (default none)",
		"--config value",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, bad := range []string{"--learning_rate", "(default: ", "--bf16 value"} {
		if strings.Contains(help, bad) {
			t.Errorf("help contains %q:\n%s", bad, help)
		}
	}
}

func TestFlagsReusable(t *testing.T) {
	// The same flags parsed twice (two runs of one app) must not carry values over.
	cfg := defaultConfig()
	flags := Flags(cfg)
	var got []sampleConfig
	app := &cli.App{Name: "rl", Flags: flags, Action: func(c *cli.Context) error {
		cfg := defaultConfig()
		err := Load(c, &cfg)
		got = append(got, cfg)
		return err
	}}
	for _, args := range [][]string{{"rl", "--loss-type", "sft", "--beta", "2"}, {"rl"}} {
		if err := app.Run(args); err != nil {
			t.Fatal(err)
		}
	}
	want1 := defaultConfig()
	want1.LossType, want1.Beta = []string{"sft"}, 2
	if want := []sampleConfig{want1, defaultConfig()}; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestFlagsPanicsOnBadStructs(t *testing.T) {
	type embedded struct{ A int }
	type noInline struct {
		embedded
	}
	type dupKeys struct {
		A int `yaml:"x"`
		B int `yaml:"x"`
	}
	type unsupported struct {
		M map[string]int `yaml:"m"`
	}
	type reserved struct {
		C string `yaml:"config"`
	}
	tests := []struct {
		name string
		cfg  any
		want string
	}{
		{"not a struct", 3, "config must be a struct"},
		{"embedded without inline", noInline{}, "needs a `yaml:\",inline\"` tag"},
		{"duplicate keys", dupKeys{}, `share the key "x"`},
		{"unsupported type", unsupported{}, "unsupported type map[string]int"},
		{"reserved key", reserved{}, `key "config" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("got panic %v, want one containing %q", r, tt.want)
				}
			}()
			Flags(tt.cfg)
		})
	}
}

func TestDump(t *testing.T) {
	cfg := defaultConfig()
	cfg.LearningRate = 5e-5
	cfg.LossWeights = []float64{1, 0.5}
	cfg.MaxLength = ptr(512)
	cfg.Name = "true" // must stay a string
	got, err := Dump(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := `output_dir: out
learning_rate: 5.0e-05
max_steps: -1
seed: 42
bf16: false
save_every: 30m0s
beta: 0.1
loss_type: [sigmoid]
loss_weights: [1.0, 0.5]
max_grad_norm: null
max_length: 512
mode: mean
name: "true"
`
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// Round trip: the dump loads back to the same config.
	path := filepath.Join(t.TempDir(), "rl_config.yaml")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	var back sampleConfig
	if err := LoadFile(path, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip: got %+v, want %+v", back, cfg)
	}
}

func TestYAMLFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{{0, "0.0"}, {1, "1.0"}, {0.1, "0.1"}, {5e-5, "5.0e-05"}, {1.5e-7, "1.5e-07"}, {1e21, "1.0e+21"}, {-3, "-3.0"}}
	for _, tt := range tests {
		if got := yamlFloat(tt.f); got != tt.want {
			t.Errorf("yamlFloat(%v): got %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields, err := fieldsOf(reflect.TypeFor[sampleConfig]())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, want string }{
		{"learnig_rate", "learning_rate"}, {"max_step", "max_steps"}, {"bf_16", "bf16"},
		{"max_grad", "max_grad_norm"}, {"gradient_accumulation_steps", ""}, {"lr", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, fields); got != tt.want {
			t.Errorf("suggest(%q): got %q, want %q", tt.key, got, tt.want)
		}
	}
}
