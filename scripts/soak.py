#!/usr/bin/env python3
"""Soak benchmark: mixed traffic against a running Ponder for a long while, printing what
drifts. Not a test; run it by hand (the README's table comes from it).

    target/release/ponder serve --model MODEL --port 8000 &
    scripts/soak.py --url http://127.0.0.1:8000 --pid $! --minutes 30 --streams 32

Each of `--streams` clients sends one request after another, drawn at random: chat with a
thinking budget (min and max, or Anthropic's spelling, or an effort level), thinking off,
streaming or not, a few long prompts (about 2,000 tokens); 10% of the streaming clients
hang up after the first event. Every minute it prints the KV blocks in use (from /metrics)
and the server's resident memory (from /proc, when `--pid` is given); at the end a table per
window (`--window` minutes): requests, errors (5xx, broken connections, error events),
refusals (4xx: the mix is built so there should be none), and time to first token p50/p99 of the
streaming requests that were read to the end. Standard library only."""

import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse
import urllib.request

LONG_PROMPT = "Summarise the following notes in one sentence. " + " ".join(
    f"Note {i}: the shipment of part {i * 7 % 97} arrived {i % 5} days late." for i in range(160)
)
QUESTIONS = [
    "How many primes are below 50?",
    "Write a Python function that reverses a string.",
    "What is 17 * 23?",
    "Name three sorting algorithms and their complexity.",
    "Is 221 prime? Explain briefly.",
]


def request_body(rng):
    """One request of the mix, and whether it streams."""
    long_prompt = rng.random() < 0.03
    content = LONG_PROMPT if long_prompt else rng.choice(QUESTIONS)
    answer = rng.choice([32, 64, 96])
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": answer}
    budget = rng.random()
    # Every budget fits: max_tokens leaves the answer its reserve (a quarter) beyond it.
    if budget < 0.35:
        low = rng.choice([0, 16, 32])
        high = low + rng.choice([16, 48])
        body["thinking"] = {"min_tokens": low, "max_tokens": high}
        body["max_tokens"] = high + answer
    elif budget < 0.5:
        tokens = rng.choice([24, 64])
        body["thinking"] = {"type": "enabled", "budget_tokens": tokens}
        body["max_tokens"] = tokens + answer
    elif budget < 0.65:
        # Effort presets are "up to" budgets, cut to what max_tokens leaves.
        body["reasoning_effort"] = rng.choice(["minimal", "low"])
    elif budget < 0.8:
        body["thinking"] = False
    stream = rng.random() < 0.6
    if stream:
        body["stream"] = True
    return body, stream


class Results:
    """What every client saw, with the time it saw it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (start, ok, ttft or None, kind): kind "refused" for a 4xx

    def add(self, start, ok, ttft, kind):
        with self.lock:
            self.requests.append((start, ok, ttft, kind))


def one_request(url, body, stream, disconnect, results, api_key):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=600)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    start = time.time()
    kind = "stream" if stream else "plain"
    try:
        connection.request("POST", "/v1/chat/completions", json.dumps(body), headers)
        response = connection.getresponse()
        if response.status != 200:
            response.read()
            refused = 400 <= response.status < 500
            results.add(start, refused, None, "refused" if refused else kind)
            return
        if not stream:
            json.loads(response.read())
            results.add(start, True, None, kind)
            return
        ttft = None
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                results.add(start, False, None, kind)
                return
            if ttft is None:
                ttft = time.time() - start
                if disconnect:
                    results.add(start, True, None, "disconnected")
                    return
        results.add(start, ttft is not None, ttft, kind)
    except (OSError, ValueError, http.client.HTTPException):
        results.add(start, False, None, kind)
    finally:
        connection.close()


def client(url, deadline, seed, results, api_key):
    rng = random.Random(seed)
    while time.time() < deadline:
        body, stream = request_body(rng)
        disconnect = stream and rng.random() < 0.10
        one_request(url, body, stream, disconnect, results, api_key)


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def monitor(url, pid, deadline, begin, samples, api_key):
    while True:
        now = time.time()
        try:
            request = urllib.request.Request(url + "/metrics")
            if api_key:
                request.add_header("Authorization", f"Bearer {api_key}")
            text = urllib.request.urlopen(request, timeout=10).read().decode()
            used, total = metric(text, "ponder_kv_blocks_used"), metric(text, "ponder_kv_blocks_total")
        except OSError:
            used = total = None
        rss = rss_mib(pid) if pid else None
        samples.append((now - begin, used, total, rss))
        shown = f"{rss:.0f} MiB" if rss is not None else "-"
        print(f"minute {(now - begin) / 60:5.1f}: KV blocks {used}/{total}, RSS {shown}", flush=True)
        if now >= deadline:
            return
        time.sleep(min(60, max(1, deadline - now)))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, help="the server's process id, for its memory")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--window", type=float, default=5, help="minutes per row of the table")
    parser.add_argument("--api-key")
    args = parser.parse_args()

    begin = time.time()
    deadline = begin + args.minutes * 60
    results, samples = Results(), []
    threads = [
        threading.Thread(target=client, args=(args.url, deadline, seed, results, args.api_key), daemon=True)
        for seed in range(args.streams)
    ]
    watcher = threading.Thread(target=monitor, args=(args.url, args.pid, deadline, begin, samples, args.api_key))
    for thread in threads + [watcher]:
        thread.start()
    watcher.join()
    for thread in threads:
        thread.join(timeout=600)

    print(f"\n{args.streams} streams, {args.minutes:g} minutes; per {args.window:g}-minute window:\n")
    print("| window | requests | errors | refused (4xx) | disconnected | TTFT p50 | TTFT p99 |")
    print("|---|---|---|---|---|---|---|")
    window = args.window * 60
    rows = int(args.minutes * 60 // window + (1 if args.minutes * 60 % window else 0))
    for w in range(rows):
        inside = [r for r in results.requests if w * window <= r[0] - begin < (w + 1) * window]
        ttfts = [r[2] for r in inside if r[2] is not None]
        errors = sum(1 for r in inside if not r[1])
        dropped = sum(1 for r in inside if r[3] == "disconnected")
        refused = sum(1 for r in inside if r[3] == "refused")
        print(
            f"| {w * args.window:g}-{(w + 1) * args.window:g} min | {len(inside)} | {errors} | {refused} | {dropped} "
            f"| {percentile(ttfts, 50):.2f} s | {percentile(ttfts, 99):.2f} s |"
        )
    rss = [s[3] for s in samples if s[3] is not None]
    if rss:
        print(f"\nRSS: first {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB; "
              f"median of the second half {statistics.median(rss[len(rss) // 2:]):.0f} MiB")
    used = [s[1] for s in samples if s[1] is not None]
    if used:
        print(f"KV blocks in use: max {max(used):.0f}, at the end {used[-1]:.0f} (of {samples[-1][2]:.0f})")


if __name__ == "__main__":
    main()
