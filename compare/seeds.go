package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/rlsuite/rl/shared/fsutil"
)

// SweepOptions configures Sweep.
type SweepOptions struct {
	// Configs are the configurations' YAML files (the keys of a trainer's
	// flags, as rl METHOD --config reads them, or a run's rl_config.yaml).
	// A configuration is named by its file (dpo.yaml is dpo; for a
	// rl_config.yaml, its folder's name); its trainer is its "method" key
	// (removed before the trainer reads it) or told by its keys as Load
	// tells a run's method.
	Configs []string
	// Seeds runs each configuration under Seed, Seed+1, ..., Seed+Seeds-1.
	Seeds int
	Seed  int64
	// OutputDir receives OutputDir/seed-S/NAME (the run) and
	// OutputDir/seed-S/NAME.yaml (the configuration it ran).
	OutputDir string
	// Run trains method with the configuration file at path (cmd/rl runs
	// `rl METHOD --config PATH`).
	Run func(ctx context.Context, method, path string) error
	Log zerolog.Logger
}

// sweepConfig is one configuration of a sweep.
type sweepConfig struct {
	name, method, outputDir string
	values                  map[string]any
}

// Sweep runs every configuration under every seed and returns the run
// directories, seed by seed, for Report. Within a seed, a configuration
// whose setting (model_name_or_path, sft_model_path, reward_model_path,
// ...) names another configuration's output_dir starts from that
// configuration's run of the same seed, and runs after it: one SFT per
// seed feeds every method of that seed. A run already finished with its
// configuration (Finished) is not run again unless a run it starts from
// ran again, so an interrupted sweep resumes.
func Sweep(ctx context.Context, o SweepOptions) ([]string, error) {
	if o.Seeds < 1 {
		return nil, fmt.Errorf("compare: --seeds %d: give 1 or more", o.Seeds)
	}
	if len(o.Configs) == 0 {
		return nil, errors.New("compare: --seeds needs configuration files (YAML, as rl METHOD --config reads)")
	}
	if o.OutputDir == "" {
		o.OutputDir = "comparison"
	}
	cfgs, err := readSweepConfigs(o.Configs)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for i := range o.Seeds {
		seed := o.Seed + int64(i)
		seedDir := filepath.Join(o.OutputDir, fmt.Sprintf("seed-%d", seed))
		runDir := func(name string) string { return filepath.Join(seedDir, name) }
		order, deps, values, err := planSeed(cfgs, seed, runDir)
		if err != nil {
			return nil, err
		}
		ran := map[string]bool{}
		for _, c := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b, err := yaml.Marshal(values[c.name])
			if err != nil {
				return nil, fmt.Errorf("compare: %s: %w", c.name, err)
			}
			l := o.Log.With().Str("config", c.name).Int64("seed", seed).Logger()
			dirs = append(dirs, runDir(c.name))
			why := ""
			if j := slices.IndexFunc(deps[c.name], func(d string) bool { return ran[d] }); j >= 0 {
				why = "it starts from " + deps[c.name][j] + ", which ran again"
			} else if done, w := Finished(runDir(c.name), b); done {
				l.Info().Str("dir", runDir(c.name)).Msg("compare: already finished with this configuration; not rerun")
				continue
			} else {
				why = w
			}
			path := runDir(c.name) + ".yaml"
			if err := os.MkdirAll(seedDir, 0o755); err != nil {
				return nil, fmt.Errorf("compare: %w", err)
			}
			if err := fsutil.WriteFile(path, b, 0o644); err != nil {
				return nil, fmt.Errorf("compare: %w", err)
			}
			l.Info().Str("method", c.method).Str("config", path).Str("why", why).Msg("compare: running")
			if err := o.Run(ctx, c.method, path); err != nil {
				return nil, fmt.Errorf("compare: %s under seed %d (rl %s --config %s): %w", c.name, seed, c.method, path, err)
			}
			ran[c.name] = true
		}
	}
	return dirs, nil
}

// readSweepConfigs reads and names the configuration files.
func readSweepConfigs(paths []string) ([]sweepConfig, error) {
	var out []sweepConfig
	seen := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("compare: configuration: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("compare: configuration %s: %w", p, err)
		}
		if m == nil {
			m = map[string]any{}
		}
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		if filepath.Base(p) == ConfigFile {
			name = filepath.Base(filepath.Dir(filepath.Clean(p)))
		}
		if q, ok := seen[name]; ok {
			return nil, fmt.Errorf("compare: configurations %s and %s are both named %q: rename one file", q, p, name)
		}
		seen[name] = p
		method, _ := m["method"].(string)
		delete(m, "method")
		if method == "" {
			method = inferMethod(&Run{Name: name, Config: m})
		}
		if method == "" {
			return nil, fmt.Errorf("compare: configuration %s: cannot tell its trainer; add a line method: dpo (or sft, reward, ppo, orpo, kto, cpo)", p)
		}
		c := sweepConfig{name: name, method: method, values: m}
		if s, ok := m["output_dir"].(string); ok && s != "" {
			c.outputDir = filepath.Clean(s)
		}
		out = append(out, c)
	}
	return out, nil
}

// planSeed gives each configuration its values under seed (seed, its run
// directory as output_dir, overwrite_output_dir, and the run directory of
// the same seed in place of another configuration's output_dir), what
// each starts from, and an order in which every run comes after those.
func planSeed(cfgs []sweepConfig, seed int64, runDir func(string) string) (order []sweepConfig, deps map[string][]string, values map[string]map[string]any, err error) {
	byOut := map[string]string{}
	for _, c := range cfgs {
		if c.outputDir != "" {
			byOut[c.outputDir] = c.name
		}
	}
	deps, values = map[string][]string{}, map[string]map[string]any{}
	for _, c := range cfgs {
		v := make(map[string]any, len(c.values)+3)
		for k, x := range c.values {
			if s, ok := x.(string); ok && s != "" && k != "output_dir" {
				if from, ok := byOut[filepath.Clean(s)]; ok && from != c.name {
					x = runDir(from)
					deps[c.name] = append(deps[c.name], from)
				}
			}
			v[k] = x
		}
		v["seed"], v["output_dir"], v["overwrite_output_dir"] = seed, runDir(c.name), true
		values[c.name] = v
		slices.Sort(deps[c.name])
	}
	// Depth-first: each configuration after what it starts from.
	state := map[string]int{} // 1 visiting, 2 done
	byName := map[string]sweepConfig{}
	for _, c := range cfgs {
		byName[c.name] = c
	}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("compare: configurations start from each other in a cycle: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return nil
		}
		state[name] = 1
		for _, d := range deps[name] {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, byName[name])
		return nil
	}
	for _, c := range cfgs {
		if err := visit(c.name, nil); err != nil {
			return nil, nil, nil, err
		}
	}
	return order, deps, values, nil
}
