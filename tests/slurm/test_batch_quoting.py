"""Property-based: no value reaching the Slurm batch script can inject a command.

Hostile strings (command substitutions, backticks, quotes, newlines, `;`, `&&`, globbing, …
each trying `touch $M`) are put into every value that reaches a command line of the script —
component names, argv, environment values, health paths, images — and into the values of the
`#SBATCH` lines (run id, output folder, partition, account). For each example:

* values in command lines are quoted: the script renders, `bash -n` accepts it, and running
  it for real through `SlurmRuntime.launch` with stand-in `sbatch` (runs the script with bash),
  `srun` (records its argv, then sleeps briefly) and `scontrol` on PATH never creates the
  marker, and every `srun` received exactly the argv ixci meant (the hostile bytes intact);
* values of `#SBATCH` lines cannot be quoted (sbatch parses them): either the context/script
  is refused with a clean `IxciError`, or every `#SBATCH` line is one line of safe characters.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixci.engines.base import PoolJob, ServeSpec
from ixci.engines.llamacpp import serve_spec
from ixci.errors import IxciError
from ixci.runtimes import slurm
from ixci.runtimes.base import LaunchContext
from tests.runner.jobs import engine_job_of

FRAGMENTS = ["$(touch $M)", "`touch $M`", ";touch $M;", "\ntouch $M\n", "&& touch $M", "|touch $M",
             "'", '"', "\\", "${IFS}", " ", "#", "*", "~", "!", "{", "}", "[", "]", "%", "-", "=",
             ",", "a", "$M", "\r", "\t", "$((1))", "<(touch $M)", ">$M"]  # fmt: skip
hostile = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=5).map("".join)

SRUN = """#!/bin/bash
if [[ "$1" == "--help" ]]; then echo "--container-image"; exit 0; fi
printf '%s\\0' "$@" > "$SRUN_DIR/$$.argv"
exec /bin/sleep 0.4
"""
SCONTROL = """#!/bin/bash
if [[ "$1 $2" == "show hostnames" ]]; then for i in 1 2 3 4 5 6 7 8; do echo "n$i"; done; exit 0; fi
if [[ "$2 $3" == "show node" ]]; then echo "NodeName=$4 NodeAddr=127.0.0.1"; exit 0; fi
exit 1
"""
SBATCH = """#!/bin/bash
SLURM_JOB_NODELIST='n[1-8]' bash "${@: -1}" >"$SBATCH_LOG" 2>&1
echo 4242
"""
SLEEP = "#!/bin/sh\nexit 0\n"  # the script's own pauses (finish, watch loop) take no time here


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def health_port() -> Iterator[int]:
    """Every component's health answers 200 here, so the script starts every step."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("standins")
    for name, text in {
        "srun": SRUN,
        "scontrol": SCONTROL,
        "sbatch": SBATCH,
        "sleep": SLEEP,
    }.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def _spec(port: int) -> ServeSpec:
    """The llama.cpp adapter's disaggregated deployment (router + 1 prefill + 2 decode)."""
    job = engine_job_of(job_id="j-quoting00001", framework="llamacpp", image="localhost/x:1",
                    model_key="tiny", model_path="/models/tiny.gguf", served_name="tiny",
                    precision="fp32", port=port, device="cpu", max_model_len=512,
                    kv_transfer="none", router="sglang-router", router_version="0.3.2",
                    prefill=PoolJob(role="prefill", workers=1, tp=1),
                    decode=PoolJob(role="decode", workers=2, tp=1))  # fmt: skip
    return serve_spec(job)


def _hostile_spec(port: int, name: str, arg: str, env: str, path: str, image: str) -> ServeSpec:
    spec = _spec(port)
    comps = tuple(
        replace(
            c,
            name=f"{'abcd'[i]}{name}",
            argv=(*c.argv, arg),
            env={**c.env, "IXCI_T": env},
            port=port,
            health_path="/" + path,
        )
        for i, c in enumerate(spec.components)
    )
    return replace(spec, components=comps, image=image or None)


def _expected(spec: ServeSpec, logs: Path, pyxis: bool) -> dict[str, list[str]]:
    """Component name → the exact srun argv ixci meant (node list resolved to n1..n8)."""
    mounts = slurm._mounts(spec, _ctx(logs)) if pyxis and spec.image else []
    placements, _, _ = slurm.place(spec.components)
    out = {}
    for p in placements:
        nodes = ",".join(f"n{i + 1}" for i in p.nodes)
        argv = slurm._step_argv(spec, p, pyxis=pyxis, logs=logs, mounts=mounts)
        out[p.component.name] = [f"--nodelist={nodes}" if a == "--nodelist=__NODELIST__" else a
                                 for a in argv[1:]]  # fmt: skip
    return out


def _ctx(logs: Path, env: dict[str, str] | None = None, **kw: str) -> LaunchContext:
    return LaunchContext(job_id="j-quoting00001", run_id=kw.get("run_id", "r-1"), workdir=logs,
                         host_env=env or {}, owner=kw.get("owner", "t-quoting"))  # fmt: skip


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(name=hostile, arg=hostile, env=hostile, path=hostile, image=hostile, pyxis=st.booleans())
def test_command_line_values_are_quoted(
    tmp_path_factory: pytest.TempPathFactory, standins: Path, health_port: int,
    name: str, arg: str, env: str, path: str, image: str, pyxis: bool,
) -> None:  # fmt: skip
    tmp = tmp_path_factory.mktemp("q")
    logs, runs, marker = tmp / "logs", tmp / "srun", tmp / "MARKER"
    logs.mkdir()
    runs.mkdir()
    spec = _hostile_spec(health_port, name, arg, env, path, image)
    host_env = {"PATH": f"{standins}:/usr/bin:/bin", "M": str(marker), "SRUN_DIR": str(runs),
                "SBATCH_LOG": str(tmp / "batch.out"), "HOME": str(tmp),
                "IXCI_SLURM_CONTAINERS": "pyxis" if pyxis else "none",
                "IXCI_SLURM_HEALTH_TIMEOUT": "5"}  # fmt: skip
    ctx = _ctx(logs, host_env)
    opts = slurm.SlurmOptions.from_env(host_env)
    script = slurm.render_batch_script(spec, ctx, logs=logs, pyxis=pyxis, opts=opts)
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    slurm.SlurmRuntime().launch(spec, ctx, log_path=logs / "server.log")
    assert not marker.exists(), "an injected command ran:\n" + script
    got = {}
    for rec in runs.iterdir():
        argv = rec.read_bytes().split(b"\0")[:-1]
        words = [a.decode() for a in argv]
        got[words[words.index("--job-name") + 1]] = words
    expected = _expected(spec, logs, pyxis)
    assert got, (tmp / "batch.out").read_text()
    for comp, argv in got.items():
        assert argv == expected[comp], f"srun for {comp!r} got another argv"


@settings(max_examples=150, deadline=None)
@given(run_id=hostile, logs=hostile, partition=hostile, account=hostile)
def test_sbatch_directives_refuse_or_stay_one_safe_line(
    tmp_path_factory: pytest.TempPathFactory, run_id: str, logs: str, partition: str, account: str
) -> None:
    spec = _spec(8000)
    env = {"IXCI_SLURM_PARTITION": partition, "IXCI_SLURM_ACCOUNT": account}
    try:
        ctx = _ctx(Path("/tmp") / logs, env, run_id=run_id)
        opts = slurm.SlurmOptions.from_env(env)
        script = slurm.render_batch_script(
            spec, ctx, logs=Path("/tmp") / logs, pyxis=True, opts=opts
        )
    except IxciError as exc:
        assert exc.exit_code in (3, 11) and "\n" not in exc.message.split(":")[0]
        return
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for line in directives:
        option, eq, value = line.removeprefix("#SBATCH --").partition("=")
        if not eq:  # a flag without a value (--exclusive): nothing hostile can reach it
            assert option == "exclusive", line
            continue
        assert option.replace("-", "").isalpha() and slurm.DIRECTIVE_SAFE.fullmatch(value), line
    body = script.split("\n\n", 1)[1]
    assert "#SBATCH" not in body
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_newline_in_the_output_folder_is_refused(tmp_path: Path) -> None:
    """The defect: `--output` with a newline put a command line into the batch script."""
    logs = tmp_path / "x\ntouch /tmp/pwned\n#"
    spec = _spec(8000)
    with pytest.raises(IxciError) as err:
        slurm.render_batch_script(spec, _ctx(tmp_path), logs=logs, pyxis=False,
                                  opts=slurm.SlurmOptions())  # fmt: skip
    assert err.value.exit_code == 11 and "#SBATCH line cannot carry" in err.value.message


def test_a_newline_in_the_run_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IxciError) as err:
        _ctx(tmp_path, run_id="1\ntouch /tmp/pwned")
    assert err.value.exit_code == 3 and "not a safe run id" in err.value.message


def test_plain_values_still_render(tmp_path: Path) -> None:
    env = {"IXCI_SLURM_PARTITION": "gpu-a100", "IXCI_SLURM_ACCOUNT": "proj_42"}
    script = slurm.render_batch_script(_spec(8000), _ctx(tmp_path / "out" / "j-1"), logs=tmp_path,
                                       pyxis=False, opts=slurm.SlurmOptions.from_env(env))  # fmt: skip
    assert "#SBATCH --partition=gpu-a100\n" in script and "#SBATCH --account=proj_42\n" in script
    assert os.fspath(tmp_path) in script
