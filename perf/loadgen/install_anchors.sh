#!/usr/bin/env bash
# Install the anchor benchmark clients into their own virtual environments (not part of CI).
#   perf/loadgen/install_anchors.sh [vllm] [sglang] [aiperf] [guidellm]     (default: all)
# Each anchor gets ANCHORS_DIR/<name> (default ~/.cache/ixci/anchors). Packages come from PyPI
# only; the heavy GPU-only dependencies (CUDA kernels, ray, flashinfer…) are skipped because the
# benchmark clients never import them. A failing anchor does not stop the others; the summary
# at the end says which ones work.
set -uo pipefail
ANCHORS_DIR=${ANCHORS_DIR:-$HOME/.cache/ixci/anchors}
PY=${PYTHON:-python3}
VLLM_VERSION=0.33.0
SGLANG_VERSION=0.5.23
AIPERF_VERSION=0.13.0
GUIDELLM_VERSION=0.8.1
# Dependencies that only the engines (not their benchmark clients) need.
SKIP_RE='^(torch|torchvision|torchaudio|xformers|flashinfer.*|flash[-_]attn.*|nvidia-.*|cupy.*|ray|triton|vllm[-_].*|sgl[-_]kernel|sglang[-_]kernel.*|cuda-python|cuda-bindings|nixl.*|deep[-_]gemm|decord.*|torchao|xgrammar|outlines.*|llguidance|lm-format-enforcer|compressed-tensors|mistral[-_]common|opencv.*|gguf|numba|llvmlite|torch[-_]memory[-_]saver|modelscope|timm|flash[-_]mla|kernels|apache-tvm-ffi|quack.*|openai-harmony|mooncake.*|py-spy|anthropic|grpcio.*|smg.*|tiktoken|blobfile|soundfile|scipy)$'
mkdir -p "$ANCHORS_DIR"

venv() {  # venv NAME -> creates ANCHORS_DIR/NAME and upgrades pip
  local d="$ANCHORS_DIR/$1"
  [ -x "$d/bin/python" ] || "$PY" -m venv "$d"
  "$d/bin/python" -m pip install -q --upgrade pip wheel >/dev/null
}

requires() {  # requires VENV DIST -> the dist's Requires-Dist names (no extras, no markers that fail)
  "$ANCHORS_DIR/$1/bin/python" - "$2" <<'PY'
import sys
from importlib.metadata import requires
from packaging.requirements import Requirement
for line in requires(sys.argv[1]) or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    print(str(req).split(";")[0].replace(" ", ""))
PY
}

install_no_deps_plus() {  # NAME DIST==VER [extra pkgs...]: --no-deps install, then its light deps
  local name=$1 spec=$2; shift 2
  local d="$ANCHORS_DIR/$name" dist=${spec%%==*}
  venv "$name"
  "$d/bin/pip" install -q packaging >/dev/null
  "$d/bin/pip" install -q --no-deps "$spec" || return 1
  mapfile -t deps < <(requires "$name" "$dist" | grep -viE "$(echo "$SKIP_RE" | sed 's/^\^(/^(/')" | sed -E 's/^([A-Za-z0-9_.-]+)(\[.*\])?(.*)$/\1\3/')
  local light=() want dep n
  for dep in "${deps[@]}"; do
    n=$(echo "$dep" | sed -E 's/[<>=!~ ].*$//')
    echo "$n" | grep -qiE "$SKIP_RE" || light+=("$dep")
  done
  # Needed packages from the skip list are installed with the version the anchor pins.
  mapfile -t alldeps < <(requires "$name" "$dist")
  local needed=()
  for want in "$@"; do
    spec=$want
    for dep in "${alldeps[@]}"; do
      n=$(echo "$dep" | sed -E 's/[[<>=!~ ].*$//')
      [ "${n,,}" = "${want,,}" ] && spec=$(echo "$dep" | sed -E 's/\[[^]]*\]//')
    done
    needed+=("$spec")
  done
  echo "[$name] light deps: ${light[*]} ${needed[*]}"
  "$d/bin/pip" install -q "${light[@]}" "${needed[@]}"
}

install_vllm() {
  # vllm bench serve imports torch (CPU use only) for the tokenizer utilities.
  install_no_deps_plus vllm "vllm==$VLLM_VERSION" torch uvloop xgrammar llguidance || return 1
  HF_HUB_OFFLINE=1 "$ANCHORS_DIR/vllm/bin/vllm" bench serve --help >/dev/null
}

install_sglang() {
  # python -m sglang.bench_serving imports sglang.srt (model configs, quantization) on start-up:
  # torchvision (resolved against the pinned torch, so the matching build), compressed-tensors
  # and gguf are imported there although the client never uses them.
  install_no_deps_plus sglang "sglang==$SGLANG_VERSION" torch triton uvloop torchvision compressed-tensors gguf || return 1
  HF_HUB_OFFLINE=1 "$ANCHORS_DIR/sglang/bin/python" -m sglang.bench_serving --help >/dev/null
}

# AIPerf and GuideLLM install with their full dependencies (AIPerf ~1.2 GB, GuideLLM ~6 GB: torch).
# AIPerf under HF_HUB_OFFLINE=1 loads tokenizers only from the Hugging Face cache, not from a
# folder path; perf/loadgen/bench.py builds an offline cache entry for its tokenizer folder.
install_aiperf() {
  venv aiperf && "$ANCHORS_DIR/aiperf/bin/pip" install -q "aiperf==$AIPERF_VERSION" &&
    "$ANCHORS_DIR/aiperf/bin/aiperf" --help >/dev/null
}

install_guidellm() {
  venv guidellm && "$ANCHORS_DIR/guidellm/bin/pip" install -q "guidellm==$GUIDELLM_VERSION" &&
    "$ANCHORS_DIR/guidellm/bin/guidellm" --help >/dev/null
}

want=("$@"); [ ${#want[@]} -eq 0 ] && want=(vllm sglang aiperf guidellm)
declare -A ok
for a in "${want[@]}"; do
  echo "== installing $a into $ANCHORS_DIR/$a"
  if "install_$a"; then ok[$a]=yes; else ok[$a]=NO; fi
done
echo "== anchors in $ANCHORS_DIR"
for a in "${want[@]}"; do echo "  $a: ${ok[$a]:-not run}"; done
