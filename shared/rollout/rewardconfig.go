package rollout

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rlsuite/rl/shared/check"
	"github.com/rlsuite/rl/shared/train"
)

// RewardConfig is how an online trainer (GRPO, RLOO, PPO) scores its
// completions: several reward functions summed with weights, as TRL's
// GRPOConfig and RLOOConfig name them. Embed it with `yaml:",inline"`;
// DefaultRewardConfig has its defaults.
type RewardConfig struct {
	// RewardFuncs are the functions (LoadRewards): builtin:NAME, a reward
	// model directory, or cmd:PROGRAM ARGS (CmdPrefix).
	RewardFuncs []string `yaml:"reward_funcs" help:"Reward functions, summed with reward_weights: builtin:NAME, a reward model directory (an rl reward output), or cmd:PROGRAM ARGS (JSONL in, a number or null per line out); repeat or comma-separate." category:"reward"`
	// RewardWeights weigh the functions in order (nil: 1 each).
	RewardWeights []float64 `yaml:"reward_weights" help:"Weight of each reward function, in order (default: 1 each)." category:"reward"`
	// RewardTimeout is rl's: the seconds a cmd: program may take to answer
	// one completion (default 60, DefaultRewardTimeout).
	RewardTimeout float64 `yaml:"reward_timeout" help:"Seconds a cmd: reward program may take to answer one completion before the run stops with an error (rl's)." category:"reward" range:"(0,inf)"`
}

// DefaultRewardConfig is RewardConfig's defaults: no function (a trainer
// requires one), weights 1, reward_timeout 60 s.
func DefaultRewardConfig() RewardConfig {
	return RewardConfig{RewardTimeout: DefaultRewardTimeout.Seconds()}
}

// Validate reports every problem at once: at least one function, one
// weight per function, finite weights, reward_timeout > 0.
func (c *RewardConfig) Validate() error {
	var errs []error
	if err := check.Fields(c); err != nil {
		errs = append(errs, err)
	}
	if len(c.RewardFuncs) == 0 {
		errs = append(errs, errors.New("reward_funcs must name at least one reward (builtin:NAME, cmd:PROGRAM or a reward model directory)"))
	}
	if c.RewardWeights != nil && len(c.RewardWeights) != len(c.RewardFuncs) {
		errs = append(errs, fmt.Errorf("reward_weights has %d values but reward_funcs names %d functions: give one weight per function", len(c.RewardWeights), len(c.RewardFuncs)))
	}
	return errors.Join(errs...)
}

// Weights are reward_weights, 1 for each function when unset.
func (c *RewardConfig) Weights() []float64 {
	if c.RewardWeights != nil {
		return c.RewardWeights
	}
	w := make([]float64, len(c.RewardFuncs))
	for i := range w {
		w[i] = 1
	}
	return w
}

// Timeout is reward_timeout as a duration.
func (c *RewardConfig) Timeout() time.Duration {
	return time.Duration(c.RewardTimeout * float64(time.Second))
}

// Inputs are the reward functions' paths for train.CheckInputs, under
// flag (builtin:NAME and cmd:PROGRAM are no paths there).
func (c *RewardConfig) Inputs(flag string) []train.Input {
	var in []train.Input
	for _, r := range c.RewardFuncs {
		in = append(in, train.Input{Flag: flag, Path: r})
	}
	return in
}

// WeightedSum is sum_k w[k] r[k] over the functions that gave a reward
// (NaN: none); NaN when none did.
func WeightedSum(r, w []float64) float64 {
	s, any := 0.0, false
	for k, v := range r {
		if !math.IsNaN(v) {
			s += w[k] * v
			any = true
		}
	}
	if !any {
		return math.NaN()
	}
	return s
}
