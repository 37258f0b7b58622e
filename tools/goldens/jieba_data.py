"""Writes jieba 0.42.1's dictionary and HMM model for shared/textmetrics.

Run with Debian's python3-jieba (apt-get install python3-jieba):
    /usr/bin/python3 tools/goldens/jieba_data.py
It reads jieba's own files (dict.txt; finalseg's prob_start, prob_trans,
prob_emit) and writes, gzipped with a fixed mtime so that reruns are
byte-identical:
    shared/textmetrics/jiebadata/dict.txt.gz  "word freq" per line, in
        dict.txt's order (the part-of-speech column dropped)
    shared/textmetrics/jiebadata/hmm.txt.gz   "start S logp", "trans S T logp"
        and "emit S char logp" lines, floats as Python's repr (exact doubles)
jieba is MIT-licensed (Sun Junyi); its LICENSE is copied beside the data.
"""
import gzip
import io
import os

import jieba
import jieba.finalseg.prob_emit as emit
import jieba.finalseg.prob_start as start
import jieba.finalseg.prob_trans as trans

assert jieba.__version__ == "0.42.1", jieba.__version__
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = os.path.join(root, "shared", "textmetrics", "jiebadata")
os.makedirs(out, exist_ok=True)
pkg = os.path.dirname(jieba.__file__)


def write_gz(name, text):
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf-8"))
    with open(os.path.join(out, name), "wb") as f:
        f.write(raw.getvalue())


lines = []
with open(os.path.join(pkg, "dict.txt"), "rb") as f:
    for line in f:
        line = line.strip().decode("utf-8")
        word, freq = line.split(" ")[:2]
        lines.append("%s %d" % (word, int(freq)))
write_gz("dict.txt.gz", "\n".join(lines) + "\n")

hmm = []
for s in "BEMS":
    hmm.append("start %s %r" % (s, start.P[s]))
for s in "BEMS":
    for t, p in sorted(trans.P[s].items()):
        hmm.append("trans %s %s %r" % (s, t, p))
for s in "BEMS":
    for c, p in sorted(emit.P[s].items()):
        assert len(c) == 1 and not c.isspace(), repr(c)
        hmm.append("emit %s %s %r" % (s, c, p))
write_gz("hmm.txt.gz", "\n".join(hmm) + "\n")
print("wrote", out, len(lines), "words,", len(hmm), "hmm lines")
