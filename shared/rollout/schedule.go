package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Schedule reuses generation batches as TRL's GRPO and RLOO trainers do
// (_prepare_inputs): a generation of steps_per_generation micro-batches
// is made every steps_per_generation * num_iterations micro-batches and
// its micro-batches are served in turn, num_iterations times over. The
// trainer asks for gradient_accumulation_steps micro-batches per
// optimizer step: Begin queues them, Next hands them out.
type Schedule[S any] struct {
	GAS, StepsPerGeneration, NumIterations int

	buf   [][]S
	queue [][]S
}

// Every is the number of micro-batches one generation serves.
func (s *Schedule[S]) Every() int { return s.StepsPerGeneration * s.NumIterations }

// NeedOld reports whether the policy can change while a generation is in
// use (gradient_accumulation_steps % (steps_per_generation *
// num_iterations) != 0, TRL's condition): then the generation-time
// log-probs must be kept as the old policy's.
func (s *Schedule[S]) NeedOld() bool { return s.GAS%s.Every() != 0 }

// Begin queues the micro-batches of optimizer step step, calling gen for
// generation g where one is due; gen returns the generation's samples
// (already shuffled), which are split into StepsPerGeneration micro-batches.
func (s *Schedule[S]) Begin(step int, gen func(g int) ([]S, error)) error {
	s.queue = s.queue[:0]
	for micro := 0; micro < s.GAS; micro++ {
		k := step*s.GAS + micro
		if k%s.Every() == 0 {
			ss, err := gen(k / s.Every())
			if err != nil {
				return err
			}
			s.buf = s.buf[:0]
			per := (len(ss) + s.StepsPerGeneration - 1) / s.StepsPerGeneration
			for lo := 0; lo < len(ss); lo += per {
				s.buf = append(s.buf, ss[lo:min(lo+per, len(ss))])
			}
		} else if len(s.buf) == 0 {
			return s.ResumableAt(step)
		}
		s.queue = append(s.queue, s.buf[k%s.StepsPerGeneration])
	}
	return nil
}

// Next returns the next queued micro-batch.
func (s *Schedule[S]) Next() ([]S, error) {
	if len(s.queue) == 0 {
		return nil, fmt.Errorf("rollout: no generation batch queued for this micro-batch")
	}
	b := s.queue[0]
	s.queue = s.queue[1:]
	return b, nil
}

// ResumableAt implements train.SaveBoundary: a run resumes only where a
// generation starts (the completions in use are not saved).
func (s *Schedule[S]) ResumableAt(step int) error {
	if (step*s.GAS)%s.Every() != 0 {
		return fmt.Errorf("step %d is inside a generation batch (each serves %d micro-batches: steps_per_generation %d x num_iterations %d, with gradient_accumulation_steps %d); resume from a checkpoint where a generation starts", step, s.Every(), s.StepsPerGeneration, s.NumIterations, s.GAS)
	}
	return nil
}

// Window collects per-generation metrics between two logs; each logged
// value is the mean over the window's generations (NaN values skipped),
// as TRL averages its metric lists at log time.
type Window struct {
	gens []map[string]float64
}

// Add records a generation's metrics.
func (w *Window) Add(m map[string]float64) { w.gens = append(w.gens, m) }

// Flush writes the means into vals and empties the window.
func (w *Window) Flush(vals map[string]float64) {
	sums, ns := map[string]float64{}, map[string]float64{}
	for _, m := range w.gens {
		for k, v := range m {
			if !math.IsNaN(v) {
				sums[k] += v
				ns[k]++
			}
		}
	}
	for k, s := range sums {
		vals[k] = s / ns[k]
	}
	w.gens = w.gens[:0]
}

// MarshalJSON writes the window (NaN and Inf values dropped: JSON has none).
func (w *Window) MarshalJSON() ([]byte, error) {
	out := make([]map[string]float64, len(w.gens))
	for i, m := range w.gens {
		out[i] = map[string]float64{}
		for k, v := range m {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				out[i][k] = v
			}
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (w *Window) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &w.gens) }

// Derive fills generation_batch_size and steps_per_generation as TRL's
// GRPOConfig and RLOOConfig __post_init__ do, in a world of world
// processes: the generation batch is the world's (per_device_train_batch_size
// x world x steps_per_generation), steps_per_generation defaults to
// gradient_accumulation_steps; at most one of the two may be set.
func Derive(perDevice, gas, world int, genBatchSize, stepsPerGen *int) (genBatch, spg int, err error) {
	global := perDevice * max(world, 1)
	switch {
	case genBatchSize == nil && stepsPerGen == nil:
		spg = gas
		genBatch = global * spg
	case genBatchSize != nil && stepsPerGen == nil:
		genBatch = *genBatchSize
		if global <= 0 || genBatch%global != 0 {
			return 0, 0, fmt.Errorf("generation_batch_size (%d) must be divisible by the global batch size (per_device_train_batch_size %d x %d processes)", genBatch, perDevice, max(world, 1))
		}
		spg = genBatch / global
	case genBatchSize == nil && stepsPerGen != nil:
		spg = *stepsPerGen
		genBatch = global * spg
	default:
		return 0, 0, errors.New("generation_batch_size and steps_per_generation can not be both configured at the same time")
	}
	return genBatch, spg, nil
}
