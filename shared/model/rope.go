package model

import (
	"fmt"
	"math"
	"slices"
)

// Rotary position embeddings as transformers' modeling_rope_utils computes
// them (ROPE_INIT_FUNCTIONS): inverse frequencies per rope type, and the
// attention factor that multiplies cos and sin. Read from rope_scaling
// (transformers 4) or rope_parameters (transformers 5, flat or per layer
// type), with rope_theta and partial_rotary_factor where either puts them.

// RopeScaling is the rope type and its parameters.
type RopeScaling struct {
	Type           string  // rope_type (or the older "type"): linear, dynamic, yarn, longrope or llama3
	Factor         float64 // factor; 0 where yarn or longrope derive it
	LowFreqFactor  float64 // low_freq_factor (llama3)
	HighFreqFactor float64 // high_freq_factor (llama3)
	// OriginalMaxPositions is original_max_position_embeddings: from
	// rope_scaling, else (yarn, longrope) the config's top-level key (Phi-3),
	// else max_position_embeddings, as transformers 5's
	// standardize_rope_params fills it.
	OriginalMaxPositions float64
	// AttentionFactor is attention_factor (yarn, longrope); 0: derived.
	AttentionFactor float64
	// BetaFast, BetaSlow (yarn; 0: the paper's 32 and 1), Mscale and
	// MscaleAllDim (yarn, DeepSeek's; 0: unset), Truncate (yarn; default
	// true: the correction range is rounded to whole dimensions).
	BetaFast, BetaSlow, Mscale, MscaleAllDim float64
	Truncate                                 bool
	// ShortFactor, LongFactor (longrope): per-frequency divisors, one per
	// rotary pair, for sequences within / beyond the original length.
	ShortFactor, LongFactor []float64
}

// parseRope reads rope_theta, rope_scaling and rope_parameters (and, for
// Gemma 3, the sliding layers' base) into c.
func (c *Config) parseRope(raw map[string]any) error {
	rs, hasScaling := raw["rope_scaling"].(map[string]any)
	if v, ok := raw["rope_scaling"]; ok && v != nil && !hasScaling {
		return fmt.Errorf("rope_scaling: want an object, got %v", v)
	}
	if v, ok := raw["rope_parameters"]; ok && v != nil {
		rp, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("rope_parameters: want an object, got %v", v)
		}
		full, perLayer := rp["full_attention"].(map[string]any)
		if sliding, ok := rp["sliding_attention"].(map[string]any); ok {
			perLayer = true
			// the sliding layers' base (Gemma 3's rope_local_base_freq)
			local, err := ropeFrom("rope_parameters.sliding_attention", sliding, c)
			if err != nil {
				return err
			}
			if local != nil {
				return fmt.Errorf("rope_parameters.sliding_attention: rope_type %q on sliding layers is not supported (rl scales the full-attention layers' rotary embeddings only)", local.Type)
			}
			if t, ok := sliding["rope_theta"].(float64); ok {
				c.LocalRopeTheta = t
			}
		}
		if perLayer {
			rp = full
		}
		if rp != nil {
			name := "rope_parameters"
			if perLayer {
				name += ".full_attention"
			}
			if t, ok := rp["rope_theta"].(float64); ok {
				c.RopeTheta = t
			}
			if f, ok := rp["partial_rotary_factor"].(float64); ok {
				c.PartialRotaryFactor = f
			}
			var err error
			if c.RopeScaling, err = ropeFrom(name, rp, c); err != nil {
				return err
			}
			return nil // transformers 5 reads rope_parameters, not rope_scaling
		}
	}
	if hasScaling {
		var err error
		c.RopeScaling, err = ropeFrom("rope_scaling", rs, c)
		return err
	}
	return nil
}

// ropeFrom reads one rope settings object (name is its key, for errors);
// nil for the default type.
func ropeFrom(name string, m map[string]any, c *Config) (*RopeScaling, error) {
	r := &RopeScaling{Truncate: true}
	r.Type, _ = m["rope_type"].(string)
	if r.Type == "" {
		r.Type, _ = m["type"].(string)
	}
	bad := func(key string, want string) error {
		return fmt.Errorf("%s.%s: want %s, got %v", name, key, want, m[key])
	}
	num := func(key string, dst *float64, required bool) error {
		v, ok := m[key]
		if !ok || v == nil {
			if required {
				return bad(key, "a positive number")
			}
			return nil
		}
		x, ok := v.(float64)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
			return bad(key, "a positive number")
		}
		*dst = x
		return nil
	}
	list := func(key string) ([]float64, error) {
		v, ok := m[key].([]any)
		if !ok {
			return nil, bad(key, "a list of positive numbers")
		}
		out := make([]float64, len(v))
		for i, e := range v {
			x, ok := e.(float64)
			if !ok || !(x > 0) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s.%s[%d]: want a positive number, got %v", name, key, i, e)
			}
			out[i] = x
		}
		return out, nil
	}
	// original_max_position_embeddings, filled as standardize_rope_params
	// does for the types that read it
	original := func(required bool) error {
		if err := num("original_max_position_embeddings", &r.OriginalMaxPositions, required); err != nil || r.OriginalMaxPositions > 0 {
			return err
		}
		if v, ok := c.Raw["original_max_position_embeddings"].(float64); ok && v > 0 {
			r.OriginalMaxPositions = v
		} else {
			r.OriginalMaxPositions = float64(c.MaxPositions)
		}
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch r.Type {
	case "", "default":
		return nil, nil
	case "linear", "dynamic":
		add(num("factor", &r.Factor, true))
	case "llama3":
		add(num("factor", &r.Factor, true))
		add(num("low_freq_factor", &r.LowFreqFactor, true))
		add(num("high_freq_factor", &r.HighFreqFactor, true))
		add(original(true))
		if len(errs) == 0 && r.HighFreqFactor <= r.LowFreqFactor {
			add(fmt.Errorf("%s: high_freq_factor %g must be greater than low_freq_factor %g", name, r.HighFreqFactor, r.LowFreqFactor))
		}
	case "yarn":
		add(num("factor", &r.Factor, false))
		add(num("attention_factor", &r.AttentionFactor, false))
		add(num("beta_fast", &r.BetaFast, false))
		add(num("beta_slow", &r.BetaSlow, false))
		add(num("mscale", &r.Mscale, false))
		add(num("mscale_all_dim", &r.MscaleAllDim, false))
		add(original(false))
		if v, ok := m["truncate"]; ok && v != nil {
			b, ok := v.(bool)
			if !ok {
				add(bad("truncate", "true or false"))
			}
			r.Truncate = b
		}
	case "longrope":
		var err error
		if r.ShortFactor, err = list("short_factor"); err != nil {
			add(err)
		}
		if r.LongFactor, err = list("long_factor"); err != nil {
			add(err)
		}
		add(num("factor", &r.Factor, false))
		add(num("attention_factor", &r.AttentionFactor, false))
		add(original(false))
	default:
		return nil, fmt.Errorf("%s: rope_type %q is not supported (rl computes linear, dynamic, yarn, longrope and llama3)", name, r.Type)
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return r, nil
}

// validateRope checks what needs the whole config: the rotary width and
// longrope's factor lists.
func (c *Config) validateRope() []error {
	var errs []error
	f := c.partialRotary()
	if !(f > 0 && f <= 1) {
		return []error{fmt.Errorf("partial_rotary_factor must be in (0, 1], got %g", f)}
	}
	if d := c.RotaryDim(); c.HeadDim > 0 && (d < 2 || d%2 != 0) {
		errs = append(errs, fmt.Errorf("head_dim %d x partial_rotary_factor %g gives %d rotary channels: want an even number >= 2", c.HeadDim, f, d))
	}
	if r := c.RopeScaling; r != nil && r.Type == "longrope" {
		for key, l := range map[string][]float64{"short_factor": r.ShortFactor, "long_factor": r.LongFactor} {
			if len(l) != c.RotaryDim()/2 {
				errs = append(errs, fmt.Errorf("rope_scaling.%s has %d entries: want one per rotary pair, %d (head_dim %d x partial_rotary_factor %g / 2)", key, len(l), c.RotaryDim()/2, c.HeadDim, f))
			}
		}
	}
	if r := c.RopeScaling; r != nil && r.Type == "yarn" && r.Factor == 0 && r.OriginalMaxPositions > 0 && float64(c.MaxPositions) < r.OriginalMaxPositions {
		errs = append(errs, fmt.Errorf("rope_scaling: yarn without factor takes max_position_embeddings / original_max_position_embeddings, %d / %g < 1: set factor", c.MaxPositions, r.OriginalMaxPositions))
	}
	return errs
}

func (c *Config) partialRotary() float64 {
	if c.PartialRotaryFactor == 0 {
		return 1
	}
	return c.PartialRotaryFactor
}

// RotaryDim is the number of channels of each head that RoPE rotates:
// int(head_dim * partial_rotary_factor), as transformers computes dim.
func (c *Config) RotaryDim() int {
	return int(float64(c.HeadDim) * c.partialRotary())
}

// ropeLengthDependent reports whether the inverse frequencies depend on the
// sequence length (dynamic, longrope), so the forward recomputes them.
func (c *Config) ropeLengthDependent() bool {
	r := c.RopeScaling
	return r != nil && (r.Type == "dynamic" || r.Type == "longrope")
}

// RopeInvFreq returns the rotary inverse frequencies (RotaryDim/2) that
// transformers computes at initialisation (seq_len None): see RopeInvFreqAt.
func (c *Config) RopeInvFreq() []float64 { return c.RopeInvFreqAt(0) }

// RopeInvFreqAt returns the inverse frequencies for a forward pass whose
// largest position is seqLen-1 (0: at initialisation), as
// modeling_rope_utils' ROPE_INIT_FUNCTIONS and the dynamic_rope_update
// decorator compute them. With base theta and d = RotaryDim:
//
//   - default: theta^(-2j/d) (_compute_default_rope_parameters);
//   - linear: divided by factor (_compute_linear_scaling_rope_parameters);
//   - llama3 (_compute_llama3_parameters): divided by factor where the
//     wavelength exceeds original / low_freq_factor, kept below
//     original / high_freq_factor, interpolated smoothly between;
//   - dynamic NTK (_compute_dynamic_ntk_parameters; bloc97 and emozilla):
//     base theta * (factor * L / max_pos - (factor - 1))^(d/(d-2)) with L =
//     max(seqLen, max_position_embeddings), so it equals default within the
//     model's positions;
//   - yarn (_compute_yarn_parameters; Peng et al. 2023, arXiv:2309.00071,
//     Eq. 22-23): a ramp between interpolated (/factor) and extrapolated
//     frequencies over the dimensions whose rotations at the original length
//     lie between beta_fast and beta_slow;
//   - longrope (_compute_longrope_parameters; Ding et al. 2024,
//     arXiv:2402.13753): theta^(-2j/d) / ext[j], ext = long_factor when
//     seqLen > original_max_position_embeddings, else short_factor.
//
// The formulas run in float64 (transformers runs them in float32; the two
// agree to float32's rounding).
func (c *Config) RopeInvFreqAt(seqLen int) []float64 {
	d := c.RotaryDim()
	theta := c.RopeTheta
	r := c.RopeScaling
	if r != nil && r.Type == "dynamic" {
		L := math.Max(float64(seqLen), float64(c.MaxPositions))
		theta *= math.Pow(r.Factor*L/float64(c.MaxPositions)-(r.Factor-1), float64(d)/float64(d-2))
	}
	inv := make([]float64, d/2)
	for j := range inv {
		inv[j] = 1 / math.Pow(theta, float64(2*j)/float64(d))
	}
	if r == nil {
		return inv
	}
	switch r.Type {
	case "linear":
		for j := range inv {
			inv[j] /= r.Factor
		}
	case "llama3":
		lowWL, highWL := r.OriginalMaxPositions/r.LowFreqFactor, r.OriginalMaxPositions/r.HighFreqFactor
		for j, f := range inv {
			wl := 2 * math.Pi / f
			g := f
			if wl > lowWL {
				g = f / r.Factor
			}
			if !(wl < highWL) && !(wl > lowWL) {
				s := (r.OriginalMaxPositions/wl - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				g = (1-s)*g/r.Factor + s*g
			}
			inv[j] = g
		}
	case "yarn":
		factor := c.yarnFactor()
		fast, slow := r.BetaFast, r.BetaSlow
		if fast == 0 {
			fast = 32
		}
		if slow == 0 {
			slow = 1
		}
		// the dimension at which the original length makes rot rotations
		corr := func(rot float64) float64 {
			return float64(d) * math.Log(r.OriginalMaxPositions/(rot*2*math.Pi)) / (2 * math.Log(c.RopeTheta))
		}
		low, high := corr(fast), corr(slow)
		if r.Truncate {
			low, high = math.Floor(low), math.Ceil(high)
		}
		low, high = math.Max(low, 0), math.Min(high, float64(d-1))
		if low == high {
			high += 0.001 // transformers' guard against a zero-width ramp
		}
		for j, f := range inv {
			ramp := math.Min(math.Max((float64(j)-low)/(high-low), 0), 1)
			extrap := 1 - ramp // weight of the unscaled frequency
			inv[j] = f/factor*(1-extrap) + f*extrap
		}
	case "longrope":
		ext := r.ShortFactor
		if float64(seqLen) > r.OriginalMaxPositions {
			ext = r.LongFactor
		}
		for j := range inv {
			inv[j] /= ext[j]
		}
	}
	return inv
}

// yarnFactor is yarn's factor, or max_position_embeddings / original when
// the config has none (transformers 5).
func (c *Config) yarnFactor() float64 {
	r := c.RopeScaling
	if r.Factor > 0 {
		return r.Factor
	}
	return float64(c.MaxPositions) / r.OriginalMaxPositions
}

// RopeAttentionFactor is the factor transformers multiplies cos and sin by
// (attention_scaling): 1 except for yarn, 0.1 ln(factor) + 1 (the paper's
// sqrt(1/t), Eq. 26; with mscale and mscale_all_dim, their ratio), and
// longrope, sqrt(1 + ln(factor) / ln(original)); attention_factor when the
// config gives it.
func (c *Config) RopeAttentionFactor() float64 {
	r := c.RopeScaling
	if r == nil || (r.Type != "yarn" && r.Type != "longrope") {
		return 1
	}
	if r.AttentionFactor > 0 {
		return r.AttentionFactor
	}
	if r.Type == "yarn" {
		factor := c.yarnFactor()
		mscale := func(scale, m float64) float64 {
			if scale <= 1 {
				return 1
			}
			return 0.1*m*math.Log(scale) + 1
		}
		if r.Mscale != 0 && r.MscaleAllDim != 0 {
			return mscale(factor, r.Mscale) / mscale(factor, r.MscaleAllDim)
		}
		return mscale(factor, 1)
	}
	factor := r.Factor
	if factor == 0 {
		factor = float64(c.MaxPositions) / r.OriginalMaxPositions
	}
	if factor <= 1 {
		return 1
	}
	return math.Sqrt(1 + math.Log(factor)/math.Log(r.OriginalMaxPositions))
}

// qwenLayers reads Qwen2/Qwen3's sliding layers: layer_types when present,
// else, with use_sliding_window, the layers from max_window_layers on (as
// Qwen2Config derives layer_types); sliding_window is null without
// use_sliding_window.
func (c *Config) qwenLayers(r reader, raw map[string]any) error {
	n := r.int("num_hidden_layers", 0)
	if !r.bool("use_sliding_window", false) {
		if lt, ok := raw["layer_types"].([]any); ok && slices.Contains(lt, any("sliding_attention")) {
			return fmt.Errorf("layer_types has sliding_attention layers but use_sliding_window is false")
		}
		return nil
	}
	c.SlidingWindow = r.int("sliding_window", 4096)
	if c.SlidingWindow <= 0 {
		return fmt.Errorf("use_sliding_window is true: sliding_window must be > 0, got %d", c.SlidingWindow)
	}
	if n <= 0 || n > maxLayers {
		return nil // Validate reports it
	}
	c.Sliding = make([]bool, n)
	if lt, ok := raw["layer_types"].([]any); ok {
		return c.readLayerTypes(lt)
	}
	first := r.int("max_window_layers", 28)
	for i := range c.Sliding {
		c.Sliding[i] = i >= first
	}
	return nil
}

// readLayerTypes fills c.Sliding from layer_types.
func (c *Config) readLayerTypes(lt []any) error {
	if len(lt) != len(c.Sliding) {
		return fmt.Errorf("layer_types has %d entries for num_hidden_layers %d", len(lt), len(c.Sliding))
	}
	for i, v := range lt {
		switch v {
		case "sliding_attention":
			c.Sliding[i] = true
		case "full_attention":
		default:
			return fmt.Errorf("layer_types[%d] %v: want sliding_attention or full_attention", i, v)
		}
	}
	return nil
}
