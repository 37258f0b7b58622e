package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rlsuite/rl/shared/generate"
	"github.com/rlsuite/rl/shared/model"
	"github.com/rlsuite/rl/shared/tensor"
	"github.com/rlsuite/rl/shared/train"
)

// The breakdown bench (--only breakdown; not in the default set) shows where
// a step's time goes, in rl and in PyTorch on torch_ref.py's own model:
//
//   - the phases of an SFT step (and, for tiny, of a DPO step), median ms,
//     with the page faults per step (fresh memory the kernel must zero);
//   - rl's SFT and DPO steps with the forward pass scoped in a nested Tidy
//     that keeps only the loss (and the reference log-probs), so that
//     libtorch frees activations during backward as PyTorch does, timed like
//     the main benches and compared with the same PyTorch figure;
//   - (tiny) rl's sampling: Generate against a bare KV-cache loop over the
//     same model, greedy against sampled.

// The phases in rl's order (PyTorch's torch_ref order differs: zero_grad
// before backward, item and freeing last; each is timed by name).
var (
	sftPhases = []string{"hidden", "lm_head", "loss", "item", "backward", "free", "optimizer", "zero_grad"}
	dpoPhases = []string{"ref_forward", "policy_forward", "loss", "item", "backward", "free", "optimizer", "zero_grad"}
)

// breakdown is one side's phase medians (ms) for a workload.
type breakdown struct {
	Side   string             `json:"side"`
	Config string             `json:"config"`
	What   string             `json:"what"`
	Phases []string           `json:"phases"`
	Ms     map[string]float64 `json:"ms_median"`
	Faults float64            `json:"minor_faults_per_step"`
	Extra  map[string]any     `json:"extra,omitempty"`
}

var breakdowns []breakdown // filled by rlBreakdown, printed after the table

func minorFaults() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Minflt
}

// phaseTimer records the time between marks of a step into named phases
// and the page faults per step. A nil *phaseTimer does nothing.
type phaseTimer struct {
	names  []string
	t, t0  time.Time
	ms     map[string][]float64
	faults []float64
	f0     int64
}

func newPhaseTimer(names []string) *phaseTimer {
	return &phaseTimer{names: names, ms: map[string][]float64{}}
}

func (p *phaseTimer) start() {
	if p != nil {
		p.t, p.t0, p.f0 = time.Now(), time.Now(), minorFaults()
	}
}

func (p *phaseTimer) mark(name string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.ms[name] = append(p.ms[name], now.Sub(p.t).Seconds()*1000)
	p.t = now
}

func (p *phaseTimer) end() {
	if p == nil {
		return
	}
	p.ms["total"] = append(p.ms["total"], time.Since(p.t0).Seconds()*1000)
	p.faults = append(p.faults, float64(minorFaults()-p.f0))
}

func (p *phaseTimer) result(side, config, what string, extra map[string]any) breakdown {
	ms := map[string]float64{}
	for k, v := range p.ms {
		ms[k] = round2(median(v))
	}
	return breakdown{Side: side, Config: config, What: what, Phases: append(append([]string{}, p.names...), "total"),
		Ms: ms, Faults: median(p.faults), Extra: extra}
}

func rlBreakdown(e *env, config string, p measureParams) (res []*Result, err error) {
	defer tensor.Recover(&err, "breakdown "+config)
	s := shapes[config]
	n := p.Runs * p.Steps

	// ---- SFT phases
	rig, err := newSFTRig(s, s.Batch, s.SeqLen, 1)
	if err != nil {
		return nil, err
	}
	defer rig.free()
	m, opt, x, y := rig.m, rig.opt, rig.x, rig.y
	for i := 0; i < p.Warmup+1; i++ {
		sftStep(m, opt, x, y)
	}
	pt := newPhaseTimer(sftPhases)
	waitQuiet(p.QuietThresh, p.QuietWait)
	for i := 0; i < n; i++ {
		sftStepX(m, opt, x, y, unscopedMode, pt)
	}
	breakdowns = append(breakdowns, pt.result("rl", config, "sft_step", map[string]any{"steps": n, "params": len(m.Params())}))
	pt = newPhaseTimer(sftPhases)
	waitQuiet(p.QuietThresh, p.QuietWait)
	for i := 0; i < n; i++ {
		sftStepX(m, opt, x, y, rlMode, pt)
	}
	breakdowns = append(breakdowns, pt.result("rl", config, "sft_step, fwd scoped", map[string]any{"steps": n}))
	// --bf16: where autocast's time goes (the forward's casts of every
	// weight land in hidden and lm_head, their gradients' casts in backward)
	bf := rlMode
	bf.BF16 = true
	sftStepX(m, opt, x, y, bf, nil)
	pt = newPhaseTimer(sftPhases)
	waitQuiet(p.QuietThresh, p.QuietWait)
	for i := 0; i < n; i++ {
		sftStepX(m, opt, x, y, bf, pt)
	}
	breakdowns = append(breakdowns, pt.result("rl", config, "sft_step --bf16, fwd scoped", map[string]any{"steps": n}))
	if e.torch.skipped == "" {
		if err := torchBreakdown(e, "sft", config, p, n); err != nil {
			fmt.Printf("\n   PyTorch sft breakdown: %v", err)
		}
	}

	// ---- the optimizer alone: rl's AdamW.Update against the same math
	// with PyTorch's two temporaries per parameter (foldedAdamW)
	optimizerBreakdown(m, opt, config, p)

	// ---- SFT with the forward scoped, as the main bench times it
	st := measure(func() { sftStepX(m, opt, x, y, rlMode, nil) }, float64(s.Batch*s.SeqLen), p)
	res = append(res, &Result{Name: "sft_step", Config: config + ", fwd scoped", Unit: "tokens/s", Better: higher,
		RL: st.Value, RLStats: &st, Target: ">= 1.0x PyTorch",
		Extra:      map[string]any{"variant": "forward + loss in a nested tensor.Tidy keeping only the loss"},
		torchValue: e.cachedTorchValue("sft", config, "sft_step", p)})
	if config != "tiny" {
		return res, nil
	}

	// ---- DPO phases, plain and scoped
	res = append(res, dpoBreakdown(e, config, p, n)...)

	// ---- sampling
	if err := sampleBreakdown(m, s, p); err != nil {
		fmt.Printf("\n   sampling breakdown: %v", err)
	}
	return res, nil
}

func dpoBreakdown(e *env, config string, p measureParams, n int) []*Result {
	s := shapes[config]
	policy, err := newModel(s, 0)
	if err != nil {
		panic(err)
	}
	defer policy.Free()
	ref, err := newModel(s, 0)
	if err != nil {
		panic(err)
	}
	defer ref.Free()
	policy.SetRequiresGrad(true)
	opt := newAdamW(policy)
	defer opt.Free()
	chosen, rejected, mask := dpoBatch(s)
	defer chosen.Free()
	defer rejected.Free()
	defer mask.Free()

	runPhases := func(what string, f func(pt *phaseTimer)) {
		for i := 0; i < p.Warmup+1; i++ {
			f(newPhaseTimer(dpoPhases))
		}
		pt := newPhaseTimer(dpoPhases)
		waitQuiet(p.QuietThresh, p.QuietWait)
		for i := 0; i < n; i++ {
			f(pt)
		}
		breakdowns = append(breakdowns, pt.result("rl", config, what, nil))
	}
	runPhases("dpo_step", func(pt *phaseTimer) { dpoStepX(policy, ref, opt, chosen, rejected, mask, unscopedMode, pt) })
	runPhases("dpo_step, ref fwd scoped", func(pt *phaseTimer) { dpoStepX(policy, ref, opt, chosen, rejected, mask, stepMode{ScopeRef: true}, pt) })
	runPhases("dpo_step, ref+policy fwd scoped", func(pt *phaseTimer) { dpoStepX(policy, ref, opt, chosen, rejected, mask, rlMode, pt) })
	if e.torch.skipped == "" {
		if err := torchBreakdown(e, "dpo", config, p, n); err != nil {
			fmt.Printf("\n   PyTorch dpo breakdown: %v", err)
		}
	}
	dp := e.opts.params(refParams("dpo")(config), "dpo")
	var res []*Result
	for _, v := range []struct {
		label  string
		policy bool
	}{{"ref fwd scoped", false}, {"ref+policy fwd scoped", true}} {
		st := measure(func() {
			dpoStepX(policy, ref, opt, chosen, rejected, mask, stepMode{ScopeRef: true, Scoped: v.policy}, nil)
		}, float64(s.Batch), dp)
		res = append(res, &Result{Name: "dpo_step", Config: config + ", " + v.label, Unit: "pairs/s", Better: higher,
			RL: st.Value, RLStats: &st, Target: ">= 1.0x PyTorch",
			Extra:      map[string]any{"variant": v.label + " in nested tensor.Tidy scopes"},
			torchValue: e.cachedTorchValue("dpo", config, "dpo_step", dp)})
	}
	return res
}

// sampleBreakdown times Generate against a bare KV-cache loop (the model's
// forward, softmax and multinomial in libtorch, no attention mask, as
// torch_ref's generate) and greedy against sampled decoding.
func sampleBreakdown(m *model.Model, s shape, p measureParams) (err error) {
	defer tensor.Recover(&err, "sampling breakdown")
	m.SetRequiresGrad(false)
	defer m.SetRequiresGrad(true)
	rng := rand.New(rand.NewPCG(0, 3))
	prompts := make([][]int, genBatch)
	flat := make([]int64, 0, genBatch*genPrompt)
	for b := range prompts {
		for i := 0; i < genPrompt; i++ {
			id := rng.IntN(s.Vocab)
			prompts[b] = append(prompts[b], id)
			flat = append(flat, int64(id))
		}
	}
	timeIt := func(f func()) float64 {
		f() // warm-up
		var v []float64
		waitQuiet(p.QuietThresh, p.QuietWait)
		for i := 0; i < max(3, p.Runs); i++ {
			t := time.Now()
			f()
			v = append(v, time.Since(t).Seconds()*1000)
		}
		return round2(median(v))
	}
	gen := func(sample bool) func() {
		return func() {
			if _, err := generate.Generate(m, prompts, generate.Config{DoSample: sample, Temperature: 1, TopP: 1,
				MaxNewTokens: genNew, Seed: 1}); err != nil {
				panic(err)
			}
		}
	}
	bare := func() {
		tensor.NoGrad(func() {
			cache := m.NewKVCache()
			defer cache.Free()
			ids := tensor.FromInt64s(flat, genBatch, genPrompt).Keep()
			defer ids.Free()
			var next *tensor.Tensor
			for i := 0; i < genNew; i++ {
				tensor.Tidy(func() {
					in := ids
					if next != nil {
						in = next
					}
					h := m.Hidden(&model.Input{IDs: in, Cache: cache})
					h = h.Narrow(1, h.Size(1)-1, 1)
					nx := m.Logits(h).Select(1, 0).Softmax(-1).Multinomial(1, false).Keep()
					if next != nil {
						next.Free()
					}
					next = nx
				})
			}
			next.Free()
		})
	}
	names := []string{"generate_sampled", "generate_greedy", "bare_loop_multinomial"}
	ms := map[string]float64{names[0]: timeIt(gen(true)), names[1]: timeIt(gen(false)), names[2]: timeIt(bare)}
	breakdowns = append(breakdowns, breakdown{Side: "rl", Config: "tiny", What: "sampling, ms per call (KV cache)", Phases: names, Ms: ms})
	return nil
}

// dpoBatch is rlDPO's data: chosen/rejected (B, T+1) sharing a prompt, and the response mask (2B, T).
func dpoBatch(s shape) (chosen, rejected, mask *tensor.Tensor) {
	B, T, V := s.Batch, s.SeqLen, s.Vocab
	rng := rand.New(rand.NewPCG(0, 2))
	shared, _ := randomIDs(rng, B, dpoPrompt, V)
	c, _ := randomIDs(rng, B, T+1-dpoPrompt, V)
	r, _ := randomIDs(rng, B, T+1-dpoPrompt, V)
	join := func(tail []int64) *tensor.Tensor {
		v := make([]int64, 0, B*(T+1))
		n := T + 1 - dpoPrompt
		for b := 0; b < B; b++ {
			v = append(v, shared[b*dpoPrompt:(b+1)*dpoPrompt]...)
			v = append(v, tail[b*n:(b+1)*n]...)
		}
		return tensor.FromInt64s(v, int64(B), int64(T+1)).Keep()
	}
	mv := make([]float32, 2*B*T)
	for i := 0; i < 2*B; i++ {
		for t := dpoPrompt - 1; t < T; t++ { // targets at positions >= prompt-1 are response tokens
			mv[i*T+t] = 1
		}
	}
	return join(c), join(r), tensor.FromFloat32s(mv, int64(2*B), int64(T)).Keep()
}

// torchPhases is the PyTorch twin of the phase timings, on torch_ref.py's
// model, optimizer and step functions, plus the autograd profiler's op
// counts for one step.
const torchPhases = `
import copy, importlib.util, json, resource, statistics, sys, time
import torch, torch.nn.functional as F
spec = importlib.util.spec_from_file_location("torch_ref", sys.argv[1])
tr = importlib.util.module_from_spec(spec); spec.loader.exec_module(tr)
bench, cfg_name = sys.argv[2], sys.argv[3]
threads, warmup, n = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
quiet_thresh, quiet_wait, dpo_prompt = float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9])
torch.set_num_threads(threads)
cfg = tr.CONFIGS[cfg_name]
B, T, V = cfg["batch"], cfg["seq_len"], cfg["vocab"]
torch.manual_seed(0)
model = tr.build_model(cfg)
opt = tr.make_opt(model)

def hidden(m, idx):
    pos = torch.arange(0, idx.size(1), dtype=torch.long)
    h = m.wte(idx) + m.wpe(pos)
    for blk in m.h:
        h, _ = blk(h)
    return m.ln_f(h)

def flt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

if bench == "sft":
    phases = ["hidden", "lm_head", "loss", "zero_grad", "backward", "optimizer", "item", "free"]
    data = torch.randint(0, V, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    def timed():
        t = [time.perf_counter()]
        h = hidden(model, x); t.append(time.perf_counter())
        logits = F.linear(h, model.wte.weight); t.append(time.perf_counter())
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)); t.append(time.perf_counter())
        opt.zero_grad(set_to_none=True); t.append(time.perf_counter())
        loss.backward(); t.append(time.perf_counter())
        opt.step(); t.append(time.perf_counter())
        loss.item(); t.append(time.perf_counter())
        del h, logits, loss; t.append(time.perf_counter())
        return t
    plain = lambda: tr.sft_step(model, opt, x, y)
else:
    phases = ["ref_forward", "policy_forward", "loss", "zero_grad", "backward", "optimizer", "item", "free"]
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    shared = torch.randint(0, V, (B, dpo_prompt))
    chosen = torch.cat([shared, torch.randint(0, V, (B, T + 1 - dpo_prompt))], 1)
    rejected = torch.cat([shared, torch.randint(0, V, (B, T + 1 - dpo_prompt))], 1)
    mask = torch.zeros(2 * B, T)
    mask[:, dpo_prompt - 1:] = 1.0
    def timed(beta=0.1):
        t = [time.perf_counter()]
        seqs = torch.cat([chosen, rejected], 0)
        inp, tgt = seqs[:, :-1], seqs[:, 1:]
        with torch.no_grad():
            rl, _ = ref(inp)
            ref_lp = tr.seq_logps(rl, tgt, mask)
        t.append(time.perf_counter())
        pl, _ = model(inp)
        pol_lp = tr.seq_logps(pl, tgt, mask); t.append(time.perf_counter())
        logits = beta * ((pol_lp[:B] - ref_lp[:B]) - (pol_lp[B:] - ref_lp[B:]))
        loss = -F.logsigmoid(logits).mean(); t.append(time.perf_counter())
        opt.zero_grad(set_to_none=True); t.append(time.perf_counter())
        loss.backward(); t.append(time.perf_counter())
        opt.step(); t.append(time.perf_counter())
        loss.item(); t.append(time.perf_counter())
        del rl, ref_lp, pl, pol_lp, logits, loss; t.append(time.perf_counter())
        return t
    plain = lambda: tr.dpo_step(model, ref, opt, chosen, rejected, mask)

for _ in range(warmup + 1):
    timed()
tr.wait_quiet(quiet_thresh, quiet_wait)
times = {p: [] for p in phases + ["total"]}
faults = []
for _ in range(n):
    f0 = flt()
    t = timed()
    faults.append(flt() - f0)
    for i, p in enumerate(phases):
        times[p].append(1000 * (t[i + 1] - t[i]))
    times["total"].append(1000 * (t[-1] - t[0]))
ms = {p: round(statistics.median(v), 2) for p, v in times.items()}

with torch.autograd.profiler.profile() as prof:
    plain()
ev = prof.key_averages()
top = sorted(ev, key=lambda e: -e.self_cpu_time_total)[:12]
print(json.dumps(dict(side="pytorch", config=cfg_name, what=bench + "_step", phases=phases + ["total"], ms_median=ms,
    minor_faults_per_step=statistics.median(faults),
    extra=dict(steps=n, params=len(list(model.parameters())), ops_per_step=sum(e.count for e in ev),
               top_self_cpu_ms=[[e.key, round(e.self_cpu_time_total / 1000, 2), e.count] for e in top]))), flush=True)
`

func torchBreakdown(e *env, bench, config string, p measureParams, n int) error {
	f, err := os.CreateTemp("", "rl-bench-phases-*.py")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(torchPhases); err != nil {
		return err
	}
	f.Close()
	run := e.torch.runScript([]string{f.Name(), e.torch.script, bench, config, strconv.Itoa(e.torch.threads),
		strconv.Itoa(p.Warmup), strconv.Itoa(n), fmt.Sprint(p.QuietThresh), fmt.Sprint(p.QuietWait), strconv.Itoa(dpoPrompt)})
	if run.Error != "" {
		return fmt.Errorf("%s: %s", run.Error, run.Stderr)
	}
	for _, r := range run.Records {
		b := breakdown{Side: r.str("side"), Config: r.str("config"), What: r.str("what"), Ms: map[string]float64{},
			Phases: append(append([]string{}, pick(bench == "sft", sftPhases, dpoPhases)...), "total")}
		if m, ok := r["ms_median"].(map[string]any); ok {
			for k, x := range m {
				b.Ms[k], _ = x.(float64)
			}
		}
		b.Faults, _ = r.num("minor_faults_per_step")
		b.Extra, _ = r["extra"].(map[string]any)
		breakdowns = append(breakdowns, b)
	}
	return nil
}

// printBreakdowns prints the phase tables.
func printBreakdowns(f *os.File) {
	groups := map[string][]breakdown{}
	var order []string
	for _, b := range breakdowns {
		k := strings.Join(b.Phases, ",")
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], b)
	}
	for _, k := range order {
		g := groups[k]
		fmt.Fprintln(f)
		head := append([]string{"breakdown (median ms)", "config"}, g[0].Phases...)
		head = append(head, "page faults/step")
		rows := [][]string{head}
		right := []bool{false, false}
		for range g[0].Phases {
			right = append(right, true)
		}
		right = append(right, true)
		for _, b := range g {
			row := []string{b.Side + " " + b.What, b.Config}
			for _, ph := range b.Phases {
				row = append(row, fmt.Sprintf("%.1f", b.Ms[ph]))
			}
			row = append(row, pick(b.Faults > 0 || !strings.Contains(b.What, "sampling"), num(b.Faults), "-"))
			rows = append(rows, row)
		}
		printRows(f, rows, right)
	}
	for _, b := range breakdowns {
		top, ok := b.Extra["top_self_cpu_ms"].([]any)
		if !ok {
			continue
		}
		fmt.Fprintf(f, "\nPyTorch %s %s: %v autograd-profiler ops per step; top by self CPU (ms, calls):\n", b.What, b.Config, b.Extra["ops_per_step"])
		type kv struct {
			k     string
			ms, n float64
		}
		var l []kv
		for _, x := range top {
			if a, ok := x.([]any); ok && len(a) == 3 {
				ms, _ := a[1].(float64)
				n, _ := a[2].(float64)
				l = append(l, kv{fmt.Sprint(a[0]), ms, n})
			}
		}
		sort.Slice(l, func(i, j int) bool { return l[i].ms > l[j].ms })
		for _, x := range l {
			fmt.Fprintf(f, "    %-40s %8.2f %5.0f\n", x.k, x.ms, x.n)
		}
	}
}

// foldedAdamW is train.AdamW's update (decoupled weight decay on >= 2-D
// parameters, bias-corrected moments) with the scalars folded into
// in-place ops, so that it allocates two parameter-sized temporaries
// (g*g and sqrt(v)) per parameter, as torch.optim.AdamW does, instead of
// four. It exists to time the difference; see optimizerBreakdown.
type foldedAdamW struct {
	params     []model.Param
	m, v       []*tensor.Tensor
	step       int
	b1, b2, wd float64
}

func (o *foldedAdamW) update(lr float64) {
	o.step++
	bc1 := 1 - math.Pow(o.b1, float64(o.step))
	bc2 := 1 - math.Pow(o.b2, float64(o.step))
	stepSize := lr / bc1
	tensor.NoGrad(func() {
		for i, p := range o.params {
			tensor.Tidy(func() {
				g := p.T.Grad()
				if g == nil {
					return
				}
				if o.m[i] == nil {
					o.m[i] = tensor.ZerosOn(p.T.Shape(), p.T.DType(), p.T.Device()).Keep()
					o.v[i] = tensor.ZerosOn(p.T.Shape(), p.T.DType(), p.T.Device()).Keep()
				}
				m, v := o.m[i], o.v[i]
				if p.T.Dim() >= 2 {
					p.T.MulScalar_(1 - lr*o.wd)
				}
				m.Lerp_(g, 1-o.b1)          // m = b1 m + (1-b1) g
				v.Lerp_(g.Square(), 1-o.b2) // v = b2 v + (1-b2) g^2
				// p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), as p += m / denom with
				// denom = -(sqrt(v)/sqrt(bc2) + eps) / (lr/bc1)
				denom := v.Sqrt()
				denom.MulScalar_(-1 / (stepSize * math.Sqrt(bc2)))
				denom.AddScalar_(-1e-8 / stepSize)
				p.T.Addcdiv_(m, denom)
			})
		}
	})
}

func (o *foldedAdamW) free() {
	for i := range o.m {
		o.m[i].Free()
		o.v[i].Free()
	}
}

// optimizerBreakdown times opt.Update against foldedAdamW on the gradients
// the last SFT step left (both update the parameters; the figures are times,
// not a training run).
func optimizerBreakdown(m *model.Model, opt *train.AdamW, config string, p measureParams) {
	n := max(5, p.Runs*p.Steps/2)
	f := &foldedAdamW{params: m.Params(), m: make([]*tensor.Tensor, len(m.Params())), v: make([]*tensor.Tensor, len(m.Params())),
		b1: 0.9, b2: 0.95, wd: 0.1}
	defer f.free()
	f.update(lr) // create the moments
	waitQuiet(p.QuietThresh, p.QuietWait)
	var tr, tf, fr, ff []float64
	for i := 0; i < n; i++ {
		t0, f0 := time.Now(), minorFaults()
		opt.Update(lr)
		t1, f1 := time.Now(), minorFaults()
		f.update(lr)
		tr = append(tr, t1.Sub(t0).Seconds()*1000)
		tf = append(tf, time.Since(t1).Seconds()*1000)
		fr = append(fr, float64(f1-f0))
		ff = append(ff, float64(minorFaults()-f1))
	}
	breakdowns = append(breakdowns,
		breakdown{Side: "rl", Config: config, What: "AdamW.Update (fused, one pass)", Phases: []string{"optimizer"},
			Ms: map[string]float64{"optimizer": round2(median(tr))}, Faults: median(fr), Extra: map[string]any{"steps": n}},
		breakdown{Side: "rl", Config: config, What: "AdamW, 2 temporaries/param (as torch)", Phases: []string{"optimizer"},
			Ms: map[string]float64{"optimizer": round2(median(tf))}, Faults: median(ff), Extra: map[string]any{"steps": n}})
}
