"""Golden values for compare/stats.go, computed independently of gonum.

Mean and sample standard deviation come from Python's statistics module; the
Student's t quantile and two-sided p-value from a Simpson integration of the
t density (math.lgamma), with the quantile found by bisection on that CDF.
Run once: python3 tools/goldens/compare_stats.py > compare/testdata/stats_goldens.json
"""
import json
import math
import statistics


def t_pdf(x, nu):
    c = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    return math.exp(c - (nu + 1) / 2 * math.log1p(x * x / nu))


def t_cdf_upper(x, nu, n=200000):
    """P(T > x) for x >= 0: 0.5 - integral_0^x pdf, by Simpson's rule."""
    h = x / n
    s = t_pdf(0, nu) + t_pdf(x, nu)
    for i in range(1, n):
        s += (4 if i % 2 else 2) * t_pdf(i * h, nu)
    return 0.5 - s * h / 3


def t_quantile_975(nu):
    lo, hi = 0.0, 50.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if t_cdf_upper(mid, nu, 20000) > 0.025:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


samples = {
    "three": [0.75, 0.44, 0.61],
    "five": [1.0, -0.5, 0.25, 0.0, 2.0],
    "two": [0.3, 0.9],
}
summaries = {}
for name, xs in samples.items():
    n = len(xs)
    m = statistics.mean(xs)
    sd = statistics.stdev(xs)
    q = t_quantile_975(n - 1)
    half = q * sd / math.sqrt(n)
    summaries[name] = {"x": xs, "mean": m, "std": sd, "t975": q, "lo": m - half, "hi": m + half}

pairs = {
    "small": ([0.9, 0.4, 0.7, 0.8, 0.3, 0.6], [0.5, 0.5, 0.2, 0.6, 0.1, 0.4]),
    "noise": ([0.1, -0.2, 0.3, 0.0], [0.0, 0.1, 0.25, -0.1]),
}
paired = {}
for name, (a, b) in pairs.items():
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    md = statistics.mean(d)
    sd = statistics.stdev(d)
    t = md / (sd / math.sqrt(n))
    p = 2 * t_cdf_upper(abs(t), n - 1)
    paired[name] = {"a": a, "b": b, "mean_diff": md, "std_diff": sd, "t": t, "df": n - 1, "p": p}

print(json.dumps({"summaries": summaries, "paired": paired}, indent=2))
