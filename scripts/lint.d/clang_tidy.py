#!/usr/bin/env python3
"""clang_tidy.py BUILD_DIR [-j N]: clang-tidy over every file of BUILD_DIR's compile
database with the checked-in .clang-tidy files, N files at a time. Run by scripts/lint.

A file that passed is remembered in BUILD_DIR/lint/clang-tidy/ under a hash of all that
decides its result (clang-tidy's version, the .clang-tidy files that apply, the flags,
and the preprocessed source, so a changed header counts), and is skipped while none of
that changes. Exit status 1 when any file has a finding or does not compile."""

import argparse
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time

# The analyzer's node budget per function: the "shallow" budget, inlining left as deep
# as the default (see .clang-tidy). Half the default's time, the same findings here.
ANALYZER_ARGS = ["--extra-arg=-Xclang", "--extra-arg=-analyzer-config",
                 "--extra-arg=-Xclang", "--extra-arg=max-nodes=75000"]


def compile_args(entry):
    if "arguments" in entry:
        return list(entry["arguments"])
    return shlex.split(entry["command"])


def preprocess_args(args):
    """The compile command turned into one that writes the preprocessed source."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "-o":
            skip = True
        elif a != "-c":
            out.append(a)
    return out + ["-E", "-o", "-"]


def tidy_configs(path, root):
    """The contents of every .clang-tidy from the file's folder up to the root."""
    texts, folder = [], os.path.dirname(path)
    while True:
        cfg = os.path.join(folder, ".clang-tidy")
        if os.path.isfile(cfg):
            with open(cfg, "rb") as f:
                texts.append(cfg.encode() + b"\0" + f.read())
        if os.path.samefile(folder, root) or folder == os.path.dirname(folder):
            return texts
        folder = os.path.dirname(folder)


def cache_key(entry, root, version):
    args = compile_args(entry)
    pre = subprocess.run(preprocess_args(args), cwd=entry["directory"],
                         capture_output=True, check=False)
    if pre.returncode != 0:
        return None     # clang-tidy will say why
    h = hashlib.sha256()
    for part in [version, json.dumps(args).encode(), json.dumps(ANALYZER_ARGS).encode(),
                 *tidy_configs(entry["file"], root), pre.stdout]:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def run_tidy(build, path):
    started = time.monotonic()
    p = subprocess.run(["clang-tidy", "-p", build, "--quiet", *ANALYZER_ARGS, path],
                       capture_output=True, text=True, check=False)
    noise = ("warnings generated", "Suppressed ", "Use -header-filter", "Use -system-headers")
    err = "\n".join(line for line in p.stderr.splitlines()
                    if line and not any(n in line for n in noise))
    ok = p.returncode == 0 and "warning:" not in p.stdout and "error:" not in p.stdout
    return ok, (p.stdout + ("\n" + err if err else "")).strip(), time.monotonic() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 1)
    opt = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(opt.build, "compile_commands.json")) as f:
        db = json.load(f)
    entries = {}
    for e in db:    # a file built into several targets is checked once
        e["file"] = os.path.normpath(os.path.join(e["directory"], e["file"]))
        entries.setdefault(e["file"], e)
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True,
                             check=True).stdout
    cache = os.path.join(opt.build, "lint", "clang-tidy")
    os.makedirs(cache, exist_ok=True)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(opt.j) as pool:
        keys = dict(zip(entries, pool.map(lambda e: cache_key(e, root, version),
                                          entries.values())))
        todo = [p for p, k in keys.items()
                if k is None or not os.path.exists(os.path.join(cache, k))]
        todo.sort(key=os.path.getsize, reverse=True)    # the longest first
        failed = []
        for path, (ok, out, _) in zip(todo, pool.map(lambda p: run_tidy(opt.build, p), todo)):
            if ok and keys[path]:
                open(os.path.join(cache, keys[path]), "w").close()
            else:
                failed.append(path)
                print(out, flush=True)
    live = set(keys.values())
    for name in os.listdir(cache):
        if name not in live:
            os.unlink(os.path.join(cache, name))
    rel = [os.path.relpath(p, root) for p in failed]
    print(f"clang-tidy: {len(entries)} files, {len(todo)} checked, "
          f"{len(entries) - len(todo)} unchanged since they passed, "
          f"{time.monotonic() - started:.0f} s"
          + (f"; findings in {len(rel)}: {' '.join(rel)}" if rel else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
