#!/usr/bin/python3
"""torch_ref.py with the bench's longer shapes: the same model, workloads and measurement.

../shared/bench/torch_ref.py is read-only and knows two shapes (tiny and gpt2s at seq 128).
This script imports it (path: $RL_TORCH_REF, default ../../../shared/bench/torch_ref.py next
to this file), adds the configs below to its CONFIGS and runs its main(): every flag, record
and measurement is torch_ref.py's own. tools/bench runs it for the configs with a '-'.

  /usr/bin/python3 tools/bench/torch_ref_ext.py --bench sft --config tiny-512 --runs 3 --steps 2
  /usr/bin/python3 tools/bench/torch_ref_ext.py --bench dpo --config tiny-512

Configs (model dims, SFT batch and sequence; DPO: batch pairs of seq_len tokens):
  tiny-512, tiny-1024    tiny's model (4 layers, width 256, vocab 8192), batch 8
  gpt2s-512, gpt2s-1024  GPT-2 small, batch 8
--bench sample_kv: torch_ref's sampling bench on the KV-cache path only (grpo_rollout's peer);
and one more bench, --bench sft_llama --config tinyllama-512: TinyLlama-1.1B's shape (22 layers,
hidden 2048, SwiGLU 5632, 32 heads / 4 kv heads, vocab 32000, untied head; random weights, HF's
LlamaForCausalLM forward in plain torch), one SFT step under CPU autocast to bfloat16 (float32
master weights and AdamW, as transformers' bf16=True), batch 1 x 512 tokens. About 20 GB.
"""
import argparse, importlib.util, math, os, sys, time

here = os.path.dirname(os.path.abspath(__file__))
path = os.environ.get("RL_TORCH_REF") or os.path.join(here, "..", "..", "..", "shared", "bench", "torch_ref.py")
if not os.path.exists(path):
    sys.exit(f"torch_ref_ext.py: {path} not found (set RL_TORCH_REF to ../shared/bench/torch_ref.py)")
spec = importlib.util.spec_from_file_location("torch_ref", path)
tr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tr)

EXTRA = {
    "tiny-512": dict(tr.CONFIGS["tiny"], seq_len=512, batch=8),
    "tiny-1024": dict(tr.CONFIGS["tiny"], seq_len=1024, batch=8),
    "gpt2s-512": dict(tr.CONFIGS["gpt2s"], seq_len=512, batch=8),
    "gpt2s-1024": dict(tr.CONFIGS["gpt2s"], seq_len=1024, batch=8),
}
tr.CONFIGS.update(EXTRA)  # bench_sft/bench_dpo and main's --config choices read this dict

torch, nn, F = tr.torch, tr.nn, tr.F

LLAMA = {"tinyllama-512": dict(n_layer=22, n_embd=2048, n_head=32, n_kv_head=4, intermediate=5632,
                               vocab=32000, seq_len=512, batch=1, rope_theta=10000.0, eps=1e-5)}


# ----------------------------------------------------------------------------- Llama (transformers' LlamaForCausalLM)
class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):  # in float32, back to the input dtype (LlamaRMSNorm)
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.nh, self.nkv = c["n_embd"], c["n_head"], c["n_kv_head"]
        self.hd = d // self.nh
        self.input_layernorm = RMSNorm(d, c["eps"])
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, c["eps"])
        self.gate_proj = nn.Linear(d, c["intermediate"], bias=False)
        self.up_proj = nn.Linear(d, c["intermediate"], bias=False)
        self.down_proj = nn.Linear(c["intermediate"], d, bias=False)

    def forward(self, x, cos, sin, causal):
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.nh // self.nkv, dim=1)
        v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        att = F.softmax(att.masked_fill(~causal, float("-inf")), dim=-1, dtype=torch.float32).to(q.dtype)
        x = x + self.o_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["n_embd"])
        self.layers = nn.ModuleList([LlamaBlock(c) for _ in range(c["n_layer"])])
        self.norm = RMSNorm(c["n_embd"], c["eps"])
        self.lm_head = nn.Linear(c["n_embd"], c["vocab"], bias=False)
        hd = c["n_embd"] // c["n_head"]
        self.register_buffer("inv_freq", 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)
        for m in self.modules():  # initializer_range 0.02
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx):
        B, T = idx.shape
        freqs = torch.arange(T, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        x = self.embed_tokens(idx)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for layer in self.layers:
            x = layer(x, cos, sin, causal)
        return self.lm_head(self.norm(x))


def sft_step_bf16(model, opt, x, y):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def bench_sft_llama(cfg_name, args):
    cfg = LLAMA[cfg_name]
    torch.manual_seed(0)
    model = Llama(cfg)
    opt = tr.make_opt(model)
    B, T, V = cfg["batch"], cfg["seq_len"], cfg["vocab"]
    data = torch.randint(0, V, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    first = sft_step_bf16(model, opt, x, y)
    stats = tr.measure(lambda: sft_step_bf16(model, opt, x, y), B * T, args)
    last = sft_step_bf16(model, opt, x, y)
    tr.emit("sft_step_bf16", cfg_name, cfg, "tokens/s", stats, args, params=tr.count_params(model),
            loss_first=round(first, 4), loss_last=round(last, 4),
            note="torch.autocast('cpu', bfloat16) forward and loss, float32 AdamW")


def main_llama():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", choices=["sft_llama"])
    ap.add_argument("--config", default="tinyllama-512", choices=list(LLAMA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--quiet-thresh", type=float, default=0.15)
    ap.add_argument("--quiet-wait", type=float, default=30.0)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bench_sft_llama(args.config, args)


def bench_sample_kv(cfg_name, args):
    """torch_ref.py's bench_sample with the KV-cache path only: the no-cache pass (which
    recomputes every prefix) takes minutes at 64 rows and is not what rl is compared with."""
    cfg = tr.CONFIGS[cfg_name]
    torch.manual_seed(0)
    model = tr.build_model(cfg).eval()
    B, P, N, V = args.gen_batch, args.gen_prompt, args.gen_new, cfg["vocab"]
    prompt = torch.randint(0, V, (B, P))
    gen = torch.Generator().manual_seed(1)
    out = tr.generate(model, prompt, N, True, gen=gen)
    assert out.shape == (B, P + N)
    stats = tr.measure(lambda: tr.generate(model, prompt, N, True, gen=gen), B * N, args)
    tr.emit("sample_kvcache", cfg_name, cfg, "new_tokens/s", stats,
            args, gen_batch=B, prompt_len=P, new_tokens=N, sampling="multinomial T=1.0, no top-k",
            note="value = B*new_tokens / wall s per generate() call (prefill included)")


if __name__ == "__main__":
    if "sft_llama" in sys.argv:
        main_llama()
    elif "sample_kv" in sys.argv:  # torch_ref's own flags, its bench_sample on the cached path only
        sys.argv[sys.argv.index("sample_kv")] = "sample"
        tr.bench_sample = bench_sample_kv
        tr.main()
    else:
        tr.main()
