package train

import "math"

// schedules are transformers' get_scheduler multipliers of the peak rate
// at a step (0-based, the step about to be taken), for total steps and warmup.
var schedules = map[string]func(step, total, warmup int) float64{
	"linear": func(step, total, warmup int) float64 {
		if step < warmup {
			return float64(step) / math.Max(1, float64(warmup))
		}
		return math.Max(0, float64(total-step)/math.Max(1, float64(total-warmup)))
	},
	"cosine": func(step, total, warmup int) float64 {
		if step < warmup {
			return float64(step) / math.Max(1, float64(warmup))
		}
		progress := float64(step-warmup) / math.Max(1, float64(total-warmup))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*0.5*2*progress)))
	},
	"constant": func(step, total, warmup int) float64 { return 1 },
	"constant_with_warmup": func(step, total, warmup int) float64 {
		if step < warmup {
			return float64(step) / math.Max(1, float64(warmup))
		}
		return 1
	},
}

// warmupSteps is warmup_steps, or ceil(warmup_ratio * total) when it is 0.
func (a *Args) warmupSteps(total int) int {
	if a.WarmupSteps > 0 {
		return a.WarmupSteps
	}
	return int(math.Ceil(a.WarmupRatio * float64(total)))
}

// LR is the learning rate used for optimizer step `step` (0-based).
func (a *Args) LR(step, total int) float64 {
	return a.LearningRate * schedules[a.LRSchedulerType](step, total, a.warmupSteps(total))
}
