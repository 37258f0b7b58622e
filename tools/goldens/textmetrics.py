"""Golden values for shared/textmetrics from the real libraries.

    /usr/bin/python3 tools/goldens/textmetrics.py

Needs Debian's python3-jieba (0.42.1) and python3-nltk (3.8), and
rouge_chinese's source (pure Python, not packaged by Debian): by default it
is read with git from the mirror of Isaac-JL-Chen/rouge_chinese given by
$ROUGE_CHINESE_GIT (a bare git dir) into a temporary folder, imported, and
not kept. Writes shared/textmetrics/testdata/:
    jieba_golden.jsonl    {"text", "tokens": jieba.lcut(text)}
    metrics_golden.jsonl  {"pred", "label", "rouge-1", "rouge-2", "rouge-l",
                           "bleu-4"}: LLaMA-Factory's ComputeSimilarity per
                           example (src/llamafactory/train/sft/metric.py)
Texts: the first 400 characters of each instruction and output of
../shared/data/llamafactory-demo-data/alpaca_en_demo.json, Chinese and mixed
sentences written here, and edge cases (whitespace runs, CRLF, blank lines,
numbers, punctuation, emoji). Pairs: each output against a perturbed copy.
"""
import json
import logging
import os
import random
import subprocess
import sys
import tempfile

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
git_dir = os.environ.get("ROUGE_CHINESE_GIT", "/work/.mirror/Isaac-JL-Chen+rouge_chinese/repo")
tmp = tempfile.mkdtemp()
os.makedirs(os.path.join(tmp, "rouge_chinese"))
for name in ("__init__.py", "rouge.py", "rouge_score.py"):
    src = subprocess.check_output(["git", "--git-dir", git_dir, "show", "HEAD:rouge_chinese/" + name])
    with open(os.path.join(tmp, "rouge_chinese", name), "wb") as f:
        f.write(src)
sys.path.insert(0, tmp)
from rouge_chinese import Rouge  # noqa: E402

jieba.setLogLevel(logging.CRITICAL)
jieba.initialize()

ZH = [
    "我来到北京清华大学",
    "他来到了网易杭研大厦",
    "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "今天天气不错，我们去公园散步吧！",
    "机器学习是人工智能的一个分支。它使计算机能够从数据中学习。",
    "请问这个问题怎么解决？我已经试了很多次了……",
    "他说：“我明天不来了。”然后就走了。",
    "2023年GDP增长了5.2%，达到126万亿元",
    "用Python写一个快速排序算法，并解释时间复杂度O(nlogn)。",
    "深度学习模型需要大量的训练数据和计算资源",
    "这是一个测试句子......还有更多内容",
    "结婚的和尚未结婚的",
    "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "永和服装饰品有限公司",
    "我爱自然语言处理 I love NLP!",
    "北京大学生前来应聘",
    "乒乓球拍卖完了",
    "研究生命的起源",
    "C++和C#都是编程语言，e-mail地址是test@example.com",
    "价格：￥99.9元，折扣８折，ＡＢＣ全角字母",
    "第一行\n第二行\r\n第三行\n\n第五行",
    "中华人民共和国成立于1949年10月1日",
    "《红楼梦》是中国古典四大名著之一",
    "你好😀世界🌏",
    "李小福是创新办主任也是云计算方面的专家",
]
EDGE = [
    "", " ", "   ", "\n", "\r\n", "\t\t", "a", "Hello, world!", "Hello  world",
    "  leading and trailing  ", "line one\nline two", "blank\n\nlines", "crlf\r\nnext",
    "3.14 and 2.5% and 100%", "v1.2.3-beta_x", "e.g. i.e. etc.", "Mr. Smith's car", "don't won't",
    "a+b=c", "#hashtag &amp; 50% off", "...", "what?!", "Wait... what?", "你好 hello 世界 world",
    "tab\tseparated\tvalues", "nbsp\u00a0here", "ideographic\u3000space", "emoji 👍🏽 ok",
    "Ünïcödé àccents café", "Привет мир", "こんにちは世界", "안녕하세요",
]


def similarity(pred, label):
    hypothesis = list(jieba.cut(pred))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        result = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    out = {k: round(v["f"] * 100, 4) for k, v in result.items()}
    bleu = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
    out["bleu-4"] = round(bleu * 100, 4)
    return out


def perturb(text, rng):
    words = text.split(" ")
    ops = rng.randrange(4)
    if ops == 0 and len(words) > 3:  # drop some words
        words = [w for w in words if rng.random() > 0.3]
    elif ops == 1 and len(words) > 3:  # swap neighbours
        for _ in range(max(1, len(words) // 5)):
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    elif ops == 2:  # truncate
        words = words[: max(1, len(words) // 2)]
    else:  # repeat a word
        w = rng.choice(words)
        words = words + [w, w]
    return " ".join(words)


with open(os.path.join(root, "..", "shared", "data", "llamafactory-demo-data", "alpaca_en_demo.json")) as f:
    alpaca = json.load(f)
texts = list(ZH) + list(EDGE)
outputs = []
for r in alpaca:
    texts.append(r["instruction"][:400])
    texts.append(r["output"][:400])
    outputs.append(r["output"][:400])

out_dir = os.path.join(root, "shared", "textmetrics", "testdata")
os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "jieba_golden.jsonl"), "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps({"text": t, "tokens": jieba.lcut(t)}, ensure_ascii=False) + "\n")

rng = random.Random(17)
pairs = []
for i in range(len(ZH)):
    pairs.append((ZH[i], ZH[(i + 1) % len(ZH)]))
    pairs.append((ZH[i][: max(1, len(ZH[i]) // 2)] + ZH[i][-3:], ZH[i]))
for e in EDGE:
    pairs.append((e, "Hello world, this is a test."))
    pairs.append(("Hello world, this is a test.", e))
pairs.append(("", ""))
for o in outputs[:300]:
    pairs.append((perturb(o, rng), o))
with open(os.path.join(out_dir, "metrics_golden.jsonl"), "w", encoding="utf-8") as f:
    for pred, label in pairs:
        row = {"pred": pred, "label": label}
        row.update(similarity(pred, label))
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print("wrote", len(texts), "segmentations and", len(pairs), "metric rows to", out_dir)
