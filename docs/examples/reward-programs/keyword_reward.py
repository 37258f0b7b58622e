#!/usr/bin/env python3
"""A reward program for rl grpo, rl rloo and rl ppo (--reward-funcs "cmd:python3 keyword_reward.py").

rl starts it once and keeps it running. For each completion it writes one
JSON object on a line to stdin ({"prompt", "completion", and the prompt's
other dataset columns}); the program answers one line on stdout, in order:
a number, null (no reward for this completion), or {"reward": ...}.
Flush after every answer: rl waits for each one (reward_timeout).
Anything written to stderr shows up in rl's error messages.
"""
import json
import sys

for line in sys.stdin:
    row = json.loads(line)
    completion = row["completion"]
    if not completion.strip():
        print("null", flush=True)  # no reward: this completion is left out of the mean
        continue
    # 1 when the completion mentions the row's keyword column (if any), else 0
    keyword = row.get("keyword", "good")
    print(json.dumps({"reward": 1.0 if keyword in completion else 0.0}), flush=True)
