"""The Slurm runtime: one allocation per deployment, every component an `srun` step.

`launch` writes ONE batch script (saved next to the server log as `slurm-batch.sh`, and
printed verbatim by `dry_run`) and submits it with `sbatch`. The script:

* places components on the allocation's nodes: every worker/server gets its own `nodes`
  consecutive nodes (GPUs through GRES: `--gres=gpu:N` per node, N = gpus / nodes); GPU-less
  routers, front ends and services (etcd, NATS) overlap the first node (`--overlap`);
* a worker spanning several nodes is ONE step with one task per node (`tasks_per_node` per
  node for MPI engines, `--mpi=pmix`); its argv names its node rank `{node_rank}` (SLURM_NODEID
  inside the step) and its head's address `{host:<component>}`;
* exports `IXCI_NODE_<component>` (the address of the component's first node, Slurm's
  NodeAddr) to every step and writes them to `slurm-nodes`, so adapters' `{host:<component>}`
  placeholders are resolved inside each step and the runner learns where the client-facing
  step listens (`SlurmDeployment.client_host`) instead of assuming 127.0.0.1;
* starts services first, then every worker, as `srun` steps in their containers through
  enroot/pyxis (`--container-image`) when the cluster has pyxis, else as plain processes
  (local test clusters); waits until each one with a port answers its health path
  (per-worker health; plain bash `/dev/tcp`, nothing needed on the nodes), then starts the
  client-facing step (router / front end / the only server);
* exits as soon as any step ends, stopping the others, and writes which one ended and its
  exit code into a state file, so the runner sees a crash at once.

Each step writes its own log (`slurm-<component>.log` beside the server log); `stop`
`scancel`s the job (its own id only) and appends every step log to the server log.

Quoting: every value in a command line of the script goes through `shlex.quote` (or is a
fixed identifier ixci made itself). `#SBATCH` lines are read by sbatch, not bash, and cannot be
quoted: each value there must match `DIRECTIVE_SAFE` (no whitespace, quotes, `$`, `#` or
newlines) or the job fails preflight naming the value; the comment line is sanitised.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ixci import cmd
from ixci.engines.base import Component, ServeSpec, has_placeholders
from ixci.errors import CommandFailed, PreflightFailed, ServerStartFailed
from ixci.runtimes.base import ImageInfo, LaunchContext, labels
from ixci.runtimes.process import log_tail, write_files

BATCH_SCRIPT = "slurm-batch.sh"
JOB_NAME_PREFIX = "ixci-"  # every batch job ixci submits is named ixci-<job id>
STATE_FILE = "slurm-state"
NODES_FILE = "slurm-nodes"  # component=address lines, written once every step is placed
AUX_ROLES = frozenset({"frontend", "service"})  # GPU-less helpers that may share node 0
DEFAULT_TIME = "04:00:00"
DIRECTIVE_SAFE = re.compile(r"[A-Za-z0-9._,:=/+@%-]{1,512}")
TIME_RE = re.compile(r"[0-9]{1,6}(-[0-9]{1,2})?(:[0-9]{1,2}){0,2}")
_ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


@dataclass(frozen=True, kw_only=True)
class SlurmOptions:
    """Site settings, from the injected environment (`IXCI_SLURM_*`; sbatch's own `SBATCH_*`
    variables such as SBATCH_PARTITION/SBATCH_ACCOUNT also apply, sbatch reads them)."""

    partition: str | None = None
    account: str | None = None
    time_limit: str = DEFAULT_TIME
    containers: str = "auto"  # auto | pyxis | none
    health_timeout_s: int = 1800

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlurmOptions:
        """Read IXCI_SLURM_PARTITION/ACCOUNT/TIME/CONTAINERS/HEALTH_TIMEOUT from `env`."""
        mode = env.get("IXCI_SLURM_CONTAINERS", "auto")
        if mode not in ("auto", "pyxis", "none"):
            raise PreflightFailed(
                f"IXCI_SLURM_CONTAINERS={mode!r} is not one of auto, pyxis, none",
                hint="unset it (auto: pyxis when srun supports --container-image)",
            )
        timeout = env.get("IXCI_SLURM_HEALTH_TIMEOUT", "1800")
        if not timeout.isdigit() or not 0 < int(timeout) <= 7 * 86400:
            raise PreflightFailed(
                f"IXCI_SLURM_HEALTH_TIMEOUT={timeout!r} is not a number of seconds",
                hint="set it to a whole number of seconds, e.g. 1800, or unset it",
            )
        time_limit = env.get("IXCI_SLURM_TIME", DEFAULT_TIME)
        if not TIME_RE.fullmatch(time_limit):
            raise PreflightFailed(
                f"IXCI_SLURM_TIME={time_limit!r} is not a Slurm time limit",
                hint="use [days-]hours:minutes:seconds, e.g. 04:00:00",
            )
        return cls(
            partition=env.get("IXCI_SLURM_PARTITION") or None,
            account=env.get("IXCI_SLURM_ACCOUNT") or None,
            time_limit=time_limit,
            containers=mode,
            health_timeout_s=int(timeout),
        )


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where one component runs: node indices into the allocation and GPUs per node."""

    component: Component
    nodes: tuple[int, ...]
    gpus_per_node: int

    @property
    def var(self) -> str:
        """A shell-safe identifier for the component (used in variable names)."""
        return re.sub(r"[^A-Za-z0-9]", "_", self.component.name)


def place(components: Sequence[Component]) -> tuple[list[Placement], int, int]:
    """Give each worker/server (and any GPU component) its own `nodes` consecutive nodes;
    GPU-less routers, front ends and services overlap node 0.

    Returns (placements in component order, nodes in the allocation, GPUs per node).
    """
    out: list[Placement] = []
    next_node = 0
    for comp in components:
        span = max(comp.nodes, 1)
        gpn = -(-comp.gpus // span) if comp.gpus > 0 else 0
        if comp.gpus > 0 or comp.role not in AUX_ROLES:
            nodes = tuple(range(next_node, next_node + span))
            next_node += span
        else:
            nodes = tuple(range(span))
        out.append(Placement(component=comp, nodes=nodes, gpus_per_node=gpn))
    nodes_total = max([next_node, *(max(p.nodes) + 1 for p in out)])
    return out, nodes_total, max((p.gpus_per_node for p in out), default=0)


# Runs inside a step: substitutes {node_rank} (SLURM_NODEID: the node's index within the step)
# and {host:NAME} (IXCI_NODE_NAME, exported by the batch script) in every argument, then execs.
RESOLVE = (
    'a=(); for x in "$@"; do x=${x//\\{node_rank\\}/$SLURM_NODEID}; '
    "while [[ $x =~ \\{host:([A-Za-z0-9_-]+)\\} ]]; do v=IXCI_NODE_${BASH_REMATCH[1]//-/_}; "
    'x=${x//"${BASH_REMATCH[0]}"/${!v-}}; done; a+=("$x"); done; exec "${a[@]}"'
)


def _step_argv(
    spec: ServeSpec, p: Placement, *, pyxis: bool, logs: Path, mounts: Sequence[str]
) -> list[str]:
    """`srun` argv of one step (node lists are shell variables, expanded by the script)."""
    comp = p.component
    tasks = max(comp.tasks_per_node, 1)
    argv = ["srun", "--job-name", comp.name, f"--nodes={len(p.nodes)}",
            f"--ntasks={len(p.nodes) * tasks}", f"--ntasks-per-node={tasks}",
            "--nodelist=__NODELIST__", f"--output={logs}/slurm-{comp.name}.log",
            "--kill-on-bad-exit=1"]  # fmt: skip
    if p.gpus_per_node:
        argv.append(f"--gres=gpu:{p.gpus_per_node}")
    elif comp.role in AUX_ROLES:
        argv.append("--overlap")
    if tasks > 1:
        argv.append("--mpi=pmix")
    image = comp.image or spec.image
    if pyxis and image:
        # no --container-name: a named enroot container outlives the job and would be reused
        argv += [f"--container-image={image}", "--no-container-mount-home",
                 "--container-remap-root"]  # fmt: skip
        if mounts:
            argv.append("--container-mounts=" + ",".join(mounts))
    env = [f"{k}={v}" for k, v in sorted(comp.env.items())]
    command = [*(["env", *env] if env else []), *comp.argv]
    if any(has_placeholders(a) for a in command):
        command = ["bash", "-c", RESOLVE, "ixci-step", *command]
    return [*argv, *command]


def _span(p: Placement) -> str:
    return ",".join(f"${{NODES[{i}]}}" for i in p.nodes)  # expanded by the batch script


def _nodelist(arg: str, p: Placement) -> str:
    return f"--nodelist={_span(p)}" if arg == "--nodelist=__NODELIST__" else arg


def _quote_step(argv: Sequence[str], p: Placement) -> str:
    return shlex.join(argv).replace("--nodelist=__NODELIST__", f'--nodelist="{_span(p)}"', 1)


def _mounts(spec: ServeSpec, ctx: LaunchContext) -> list[str]:
    paths = [
        p for p in (ctx.model_cache, spec.files_dir if spec.files else None, *spec.mounts) if p
    ]
    model = Path(spec.model_path)
    if model.is_absolute():
        paths.append(str(model if model.suffix == "" else model.parent))
    return list(dict.fromkeys(f"{p}:{p}" for p in paths))


def _health_host(p: Placement) -> str:
    """The address the script polls for a component's health: its node, unless the component
    binds loopback only (then the batch script's own node is the only place that works)."""
    argv = list(p.component.argv)
    for flag in ("--host", "--hostname"):
        if flag in argv[:-1] and argv[argv.index(flag) + 1] in ("127.0.0.1", "localhost"):
            return "127.0.0.1"
    return f"${{IXCI_NODE_{p.var}}}"


def _health_lines(spec: ServeSpec, group: Sequence[Placement]) -> list[str]:
    out = []
    for p in group:
        comp = p.component
        if comp.port is not None:
            # the host is a fixed literal or a variable ixci named; port and path are quoted
            rest = shlex.quote(f":{int(comp.port)}{comp.health_path or spec.health_path}")
            out.append(
                f'wait_healthy {shlex.quote(comp.name)} "http://{_health_host(p)}"{rest} || finish'
            )
    return out


def _node_lines(placements: Sequence[Placement], logs: Path) -> list[str]:
    """Export IXCI_NODE_<component> (its first node's address) and record them for ixci."""
    lines = [f'export IXCI_NODE_{p.var}="$(node_addr "${{NODES[{p.nodes[0]}]}}")"'
             for p in placements]  # fmt: skip
    record = "; ".join(
        f'echo {shlex.quote(p.component.name + "=")}"$IXCI_NODE_{p.var}"' for p in placements
    )
    nodes = shlex.quote(str(logs / NODES_FILE))
    lines.append(f"{{ {record}; }} >{nodes}.tmp && mv {nodes}.tmp {nodes}")
    return lines


def render_batch_script(
    spec: ServeSpec, ctx: LaunchContext, *, logs: Path, pyxis: bool, opts: SlurmOptions
) -> str:
    """The complete sbatch script for `spec` (pure: the same inputs give the same text)."""
    placements, nodes, gpn = place(spec.components)
    mounts = _mounts(spec, ctx) if pyxis and spec.image else []
    comment = ",".join(f"{k}={v}" for k, v in labels(ctx).items())
    head = ["#!/bin/bash", _directive("job-name", f"{JOB_NAME_PREFIX}{ctx.job_id}"),
            f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1", "#SBATCH --exclusive",
            _directive("time", opts.time_limit), _directive("output", f"{logs}/slurm-batch.log"),
            "#SBATCH --open-mode=append", _directive("comment", comment)]  # fmt: skip
    if gpn:
        head.append(f"#SBATCH --gres=gpu:{gpn}")
    if opts.partition:
        head.append(_directive("partition", opts.partition))
    if opts.account:
        head.append(_directive("account", opts.account))
    mode = "enroot/pyxis containers" if pyxis and spec.image else "plain processes (no pyxis)"
    about = f"ixci job {ctx.job_id} run {ctx.run_id} attempt {ctx.attempt}: {spec.engine}, {mode}"
    body = [
        "# " + _comment_text(about),
        "set -uo pipefail",
        f"STATE={shlex.quote(str(logs / STATE_FILE))}",
        'mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        "declare -A PIDS=()",
        _SCRIPT_FUNCTIONS.replace("@HEALTH_TIMEOUT@", str(opts.health_timeout_s)),
    ]
    body += _node_lines(placements, logs)
    front, rest = placements[0], placements[1:]
    services = [p for p in rest if p.component.role == "service"]
    workers = [p for p in rest if p.component.role != "service"]
    for group in (services, workers):  # services (etcd, NATS) healthy before any worker
        body += [_start_line(spec, p, pyxis=pyxis, logs=logs, mounts=mounts) for p in group]
        body += _health_lines(spec, group)
    body.append(_start_line(spec, front, pyxis=pyxis, logs=logs, mounts=mounts))
    body.append("watch_steps")
    return "\n".join([*head, "", *body]) + "\n"


def _directive(option: str, value: str) -> str:
    """`#SBATCH --option=value`, or `PreflightFailed` when sbatch could misread `value`
    (sbatch parses these lines itself: no shell quoting applies, a newline starts a command)."""
    if not DIRECTIVE_SAFE.fullmatch(value):
        raise PreflightFailed(
            f"the Slurm option --{option} would be {value!r}, which a #SBATCH line cannot carry",
            hint="use only A-Z a-z 0-9 . _ , : = / + @ % - (no spaces) in paths, ids and "
            "IXCI_SLURM_* settings",
        )
    return f"#SBATCH --{option}={value}"


def _comment_text(text: str) -> str:
    """`text` made safe for one `# ...` line: control characters (newlines) become `?`."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _start_line(
    spec: ServeSpec, p: Placement, *, pyxis: bool, logs: Path, mounts: Sequence[str]
) -> str:
    step = _quote_step(_step_argv(spec, p, pyxis=pyxis, logs=logs, mounts=mounts), p)
    name = shlex.quote(p.component.name)
    note = shlex.quote(f"ixci: start {p.component.name} on ")
    return f'echo {note}"${{NODES[{p.nodes[0]}]}}"\n{step} &\nPIDS[{name}]=$!'


# Shell helpers inside the batch script: per-worker health through bash's /dev/tcp (no curl
# needed on the nodes), and a watcher that ends the job when any step ends.
_SCRIPT_FUNCTIONS = r"""
finish() {  # stop every step, record why, end the job with the first failure's code
  trap - TERM INT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  sleep 2
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  exit "${1:-1}"
}
trap 'echo "ixci: cancelled" >>"$STATE"; finish 143' TERM INT
node_addr() {  # node name -> its address (Slurm's NodeAddr; the name when there is none)
  local line; line=$(scontrol -o show node "$1" 2>/dev/null)
  if [[ "$line" == *NodeAddr=* ]]; then line=${line#*NodeAddr=}; echo "${line%% *}"; else echo "$1"; fi
}
http_status() {  # url -> HTTP status code (or nothing)
  local rest=${1#http://} hostport path host port line
  hostport=${rest%%/*}; path=/${rest#*/}; host=${hostport%:*}; port=${hostport##*:}
  exec 9<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&9
  read -r -t 5 line <&9; exec 9>&-
  echo "$line" | cut -d' ' -f2
}
wait_healthy() {  # name url: wait until the worker answers 200, or it dies, or time is up
  local name=$1 url=$2 deadline=$((SECONDS + @HEALTH_TIMEOUT@))
  while ((SECONDS < deadline)); do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      wait "${PIDS[$name]}"; echo "$name exited $? before it was healthy" >>"$STATE"; return 1
    fi
    [[ "$(http_status "$url")" == 200 ]] && { echo "ixci: $name healthy"; return 0; }
    sleep 1
  done
  echo "$name not healthy after @HEALTH_TIMEOUT@ s" >>"$STATE"; return 1
}
watch_steps() {  # the first step that ends ends the job
  while true; do
    for name in "${!PIDS[@]}"; do
      if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
        wait "${PIDS[$name]}"; rc=$?
        echo "$name exited $rc" >>"$STATE"
        finish $((rc == 0 ? 1 : rc))
      fi
    done
    sleep 1
  done
}""".strip("\n")


def sbatch_argv(script: Path) -> list[str]:
    """`sbatch --parsable SCRIPT` (everything else is in the script's #SBATCH lines)."""
    return ["sbatch", "--parsable", str(script)]


class SlurmDeployment:
    """One submitted batch job; implements `runtimes.base.Deployment`."""

    def __init__(self, *, job_id: str, argv: tuple[str, ...], logs: Path, log_path: Path,
                 components: Sequence[Component], env: Mapping[str, str]) -> None:  # fmt: skip
        self.slurm_job_id = job_id
        self._argv = argv
        self._logs = logs
        self._log_path = log_path
        self._components = tuple(components)
        self._env = dict(env)
        self._collected = False

    @property
    def argv(self) -> tuple[str, ...]:
        """The client-facing step's srun argv (as written into the batch script)."""
        return self._argv

    def state(self) -> tuple[str, int | None]:
        """(Slurm job state, exit code when finished) from scontrol."""
        res = cmd.run(["scontrol", "-o", "show", "job", self.slurm_job_id], check=False,
                      env=self._env, timeout=30)  # fmt: skip
        if res.returncode != 0:
            return "GONE", None
        fields = dict(kv.split("=", 1) for kv in res.stdout.split() if "=" in kv)
        code = fields.get("ExitCode", "0:0").split(":")[0]
        return fields.get("JobState", "UNKNOWN"), int(code) if code.isdigit() else None

    def reason(self) -> str:
        """What the batch script recorded (which step ended, and how), if anything."""
        try:
            return (self._logs / STATE_FILE).read_text().strip()
        except OSError:
            return ""

    def nodes(self) -> dict[str, str]:
        """Component name → address of its (first) node, once the batch script has placed
        them (empty while the job is pending)."""
        try:
            text = (self._logs / NODES_FILE).read_text()
        except OSError:
            return {}
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def client_host(self) -> str | None:
        """Where the client-facing step listens (its node's address); None until known."""
        return self.nodes().get(self._components[0].name) or None

    def poll(self) -> int | None:
        """None while the job is alive and no step has ended; else an exit code."""
        if self.reason():
            return self._exit_code()
        state, code = self.state()
        if state in _ALIVE:
            return None
        return code if code else 1

    def _exit_code(self) -> int:
        match = re.search(r"exited (\d+)", self.reason())
        return int(match.group(1)) if match and int(match.group(1)) else 1

    def log_tail(self, lines: int = 40) -> str:
        """The state file plus the last lines of every step's log."""
        parts = [self.reason()] if self.reason() else []
        for name in ("batch", *(c.name for c in self._components)):
            tail = log_tail(self._logs / f"slurm-{name}.log", lines)
            if tail:
                parts.append(f"--- {name} ---\n{tail}")
        return "\n".join(parts)

    def stop(self, *, grace_s: float = 10.0) -> None:
        """scancel this job (SIGTERM to the batch script, which stops its steps; then the
        whole job), wait until Slurm has ended it, and collect the step logs. Idempotent."""
        if self.state()[0] in _ALIVE:
            cmd.run(["scancel", "--batch", "--signal=TERM", self.slurm_job_id], check=False,
                    env=self._env, timeout=30)  # fmt: skip
            self._wait_gone(grace_s)
            cmd.run(["scancel", self.slurm_job_id], check=False, env=self._env, timeout=30)
            self._wait_gone(grace_s + 30)
        self._collect_logs()

    def _wait_gone(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.state()[0] in _ALIVE:
            time.sleep(0.5)

    def _collect_logs(self) -> None:
        if self._collected:
            return
        self._collected = True
        with self._log_path.open("a", encoding="utf-8") as out:
            for name in ("batch", *(c.name for c in self._components)):
                path = self._logs / f"slurm-{name}.log"
                if path.exists():
                    out.write(f"\n# ixci: ===== slurm step log: {name} =====\n")
                    out.write(path.read_text(encoding="utf-8", errors="replace"))

    def leftovers(self) -> list[str]:
        """This job's id while Slurm still lists it as alive."""
        state = self.state()[0]
        return [f"slurm:{self.slurm_job_id}:{state}"] if state in _ALIVE else []


class SlurmRuntime:
    """`srun`/`sbatch`, enroot/pyxis containers when available. `kind = "slurm-enroot"`."""

    kind = "slurm-enroot"
    places_components = True  # resolves {host:X}/{node_rank} itself, per node
    host_binaries = False  # the engine runs on the allocation's nodes

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self._options = options

    def _opts(self, ctx: LaunchContext) -> SlurmOptions:
        return self._options or SlurmOptions.from_env(ctx.host_env)

    def _pyxis(self, ctx: LaunchContext, *, assume: bool) -> bool:
        mode = self._opts(ctx).containers
        if mode != "auto":
            return mode == "pyxis"
        if assume:
            return True
        res = cmd.run(["srun", "--help"], check=False, env=ctx.host_env, timeout=30)
        return "--container-image" in res.stdout

    def dry_run(self, spec: ServeSpec, ctx: LaunchContext) -> str:
        """The sbatch command, the full batch script (pyxis assumed unless configured
        otherwise) and the cleanup command — nothing is run."""
        logs = ctx.workdir.resolve()
        script = render_batch_script(spec, ctx, logs=logs, pyxis=self._pyxis(ctx, assume=True),
                                     opts=self._opts(ctx))  # fmt: skip
        lines = [shlex.join(["sinfo", "--version"]),
                 f"# {logs / BATCH_SCRIPT}:", script.rstrip("\n"),
                 shlex.join(sbatch_argv(logs / BATCH_SCRIPT)),
                 "# cleanup: scancel --batch --signal=TERM <job id>; scancel <job id>"]  # fmt: skip
        for name in sorted(spec.files):
            lines.append(f"# file {spec.files_dir}/{name}\n{spec.files[name]}")
        return "\n".join(lines)

    def preflight(self, spec: ServeSpec, ctx: LaunchContext) -> ImageInfo:
        """Slurm answers; note whether components run in pyxis containers or as processes."""
        try:
            version = cmd.run(["sinfo", "--version"], env=ctx.host_env, timeout=30).stdout.strip()
            cmd.run(["sinfo", "-h", "-o", "%P"], env=ctx.host_env, timeout=30)
        except CommandFailed as exc:
            raise PreflightFailed(f"Slurm is not usable here: {exc.message}",
                                  hint="run on a Slurm login node (sinfo must answer)") from exc  # fmt: skip
        pyxis = self._pyxis(ctx, assume=False)
        notes: tuple[str, ...] = ()
        if spec.image and not pyxis:
            notes = (f"slurm: no pyxis on this cluster; components ran as plain processes, "
                     f"image {spec.image} not used",)  # fmt: skip
        image = spec.image if pyxis else None
        return ImageInfo(image=image, digest=None, runtime_version=version, notes=notes)

    def launch(self, spec: ServeSpec, ctx: LaunchContext, *, log_path: Path) -> SlurmDeployment:
        """Write the batch script beside `log_path`, submit it, return at once."""
        write_files(spec)
        logs = log_path.parent.resolve()
        logs.mkdir(parents=True, exist_ok=True)
        (logs / STATE_FILE).unlink(missing_ok=True)
        (logs / NODES_FILE).unlink(missing_ok=True)
        pyxis = self._pyxis(ctx, assume=False)
        script = render_batch_script(spec, ctx, logs=logs, pyxis=pyxis, opts=self._opts(ctx))
        path = logs / BATCH_SCRIPT
        path.write_text(script)
        try:
            res = cmd.run(sbatch_argv(path), env=ctx.host_env, cwd=logs, timeout=60)
        except CommandFailed as exc:
            raise ServerStartFailed(f"sbatch refused the job: {exc.message}") from exc
        job_id = res.stdout.strip().split(";")[0]
        placements, _, _ = place(spec.components)
        front = placements[0]
        argv = tuple(
            _nodelist(a, front)
            for a in _step_argv(spec, front, pyxis=pyxis, logs=logs, mounts=_mounts(spec, ctx))
        )
        log_path.touch()
        return SlurmDeployment(job_id=job_id, argv=argv, logs=logs, log_path=log_path,
                               components=spec.components, env=ctx.host_env)  # fmt: skip
