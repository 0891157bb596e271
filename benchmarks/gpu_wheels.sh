#!/usr/bin/env bash
# Wheels that benchmarks/gpu_checks.sh installs on a GPU machine, into .whl/ (git-ignored), for CPython 3.12
# on x86_64 Linux, at the versions of requirements.lock:
#
#     bash benchmarks/gpu_wheels.sh          # then carry .whl/ to the GPU machine with the work tree
#
# The GPU machine has torch, transformers older than the 5.23 this project needs, tokenizers, numpy, scipy,
# pytest, pillow and pyyaml, and no network. These are what transformers 5.25 and rediprune.config need on
# top of that at import (found by running every GPU step with only those packages on the path):
# huggingface-hub 2 and its HTTP stack, newer safetensors/regex (transformers checks their versions when it
# is imported), omegaconf and antlr4. hf-xet, kernels and typer are not imported on these paths.
# antlr4-python3-runtime 4.9.3 (omegaconf's pin) is published as a source archive only: built here.
set -u
cd "$(dirname "$0")/.."
NAMES="transformers huggingface-hub httpx2 httpcore2 h11 anyio idna truststore sniffio click certifi
       typing-extensions safetensors regex omegaconf"
mkdir -p .whl
for name in $NAMES; do
    pin=$(grep -E "^$name==" requirements.lock | head -1 | cut -d' ' -f1)
    [ -n "$pin" ] || { echo "error: $name is not in requirements.lock" >&2; exit 2; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "$pin" || exit 1
done
antlr=$(grep -E "^antlr4-python3-runtime==" requirements.lock | cut -d' ' -f1)
ls .whl/antlr4_python3_runtime-*.whl >/dev/null 2>&1 || python3 -m pip wheel -q --no-deps -w .whl "$antlr" || exit 1
du -sh .whl
