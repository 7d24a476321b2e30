"""`nextk sweep SPEC.toml`: a grid of runs, each cell a call into the run layer, collected into one table.

Spec (TOML, or the same structure as a dict; docs/reproduce.md has the full format):

    name = "sizes"                      # names the default folder ./nextk-runs/sweep-NAME
    run = "demo"                        # a run module: nextk.runs.<run>, or any importable module path
    retries = 1                         # a failing cell is run again this many times, then reported
    columns = { gain = "search.gain" }  # optional: extra table columns, name = dotted path into results.json
    [resources]                         # what one cell needs: Ray's request, and torch threads in the cell
    cpus = 1
    gpus = 0
    [base]                              # Config fields shared by every cell
    source = "dyck"
    source_params = { n_types = 1, max_depth = 3, length = 8 }
    [grid]                              # axes: field = [values]; the cells are their product
    seed = [0, 1]
    sizes = [[2], [4]]                  # a list-valued field takes a list of lists
    "source_params.length" = [8, 12]    # a dotted key sets inside a dict field

    [[part]]                            # more grids in one sweep (each with its own run, base, grid, columns)
    name = "search"                     # parts take retries and resources from the top level unless given
    run = "search"
    ...

A cell is the run's full Config (defaults included); its id is `<run>-<axis values>-<hash>`, the hash being
the first 10 hex digits of the SHA-256 of the canonical JSON of (run module, config): the same config is the
same cell in any sweep, part or machine. A cell runs into OUT/cells/<id>/ through the run module's `run`; the
driver writes OUT/cells/<id>/cell.json only when the run has returned, and a cell with a cell.json marked
"ok" is never run again — a killed sweep resumes where it stopped (and a killed cell resumes inside its own
run, e.g. training from its checkpoint).

Backends: "local" (a pool of `workers` processes, one fresh process per cell attempt, forked from a server
that imported torch once) and "ray" (each cell a Ray task requesting `resources`; results and files come
back to the driver). Every attempt that raises or dies is retried up to `retries` times, then the cell is
reported in the table with status "failed", its attempts and its error; the other cells complete. Each
cell sets torch to `resources.cpus` threads, so a seeded cell gives the same results on either backend.

The table (OUT/table.json, table.csv, and table.parquet when pyarrow is installed) has one row per measured
item of each cell (e.g. per model and window size k): the cell's bookkeeping (cell, part, run, status,
attempts, error, cell_seconds), its config (flattened, dotted for dict fields, lists as JSON text), then
its figures. An estimate `x` becomes the columns x, x_low, x_high, x_stderr, x_n. The rows of a run come
from its module's `table_rows(results, config)` when it has one, else from `nextk.runs.table.ROWS`, else from every
scalar of its results.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rich.markup import escape

from nextk.console import plain, quiet
from nextk.errors import InputError, check_option
from nextk.runs.common import RESULTS, config_from, prepare, read_json, write_json
from nextk.runs.table import (
    LEAD,
    ROWS,
    canonical,
    clean,
    columns_of,
    estimate,
    flat_config,
    lookup,
    read_table,
    scalars,
    write_table,
)
from nextk.sources import make_source

CELLS, CELL, ERROR, LOG, TOKEN = "cells", "cell.json", "error.txt", "log.txt", ".sweep-token"
BACKENDS = ("local", "ray")
TOP_KEYS = {"name", "run", "base", "grid", "columns", "resources", "retries", "part"}
PART_KEYS = TOP_KEYS - {"part"}
NOT_A_CELL = ("sweep", "reproduce")  # runs that run sweeps themselves
SHIP_LIMIT = 256 * 2**20  # bytes of a cell folder shipped to a Ray worker (to resume a killed attempt)


@dataclass
class Config:
    spec: dict | str  # the sweep spec (a dict as read from TOML) or the path of a TOML file
    workers: int | None = None  # local: cells at once (default: CPU cores / cpus per cell); ray: cells in flight
    backend: str = "local"  # local | ray
    address: str | None = None  # ray: auto | ray://host:10001 (default: start a local Ray)
    retries: int | None = None  # override the spec's retries for every part

    def run_name(self) -> str:
        return f"sweep-{spec_name(self.spec)}"


@dataclass
class Cell:
    id: str  # <run>-<varying axis values>-<digest>: the folder OUT/cells/<id>
    digest: str  # SHA-256 prefix of (run module, full config)
    part: str
    run: str  # as written in the spec ("demo", or a module path)
    config: dict  # the run's full Config as JSON (defaults included)
    axes: dict  # the grid values that made this cell
    retries: int
    cpus: float
    gpus: float
    columns: dict  # extra table columns: name → dotted path into results.json
    parts: list = field(default_factory=list)  # every part that holds this cell (identical configs are one cell)

    @property
    def threads(self) -> int:
        """Torch threads in the cell: an explicit --threads / NEXTK_THREADS of the driver, else resources.cpus."""
        from nextk.threads import chosen_threads

        return chosen_threads() or max(1, int(self.cpus))


# ---------------------------------------------------------------------------------------------- the spec


def spec_name(spec) -> str:
    if isinstance(spec, dict):
        return str(spec.get("name") or spec.get("run") or "sweep")
    return Path(spec).stem


def read_spec(spec: dict | str | Path) -> dict:
    """A spec dict from a TOML file (or the dict itself, copied)."""
    if isinstance(spec, dict):
        return json.loads(json.dumps(spec))
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"sweep spec {str(path)!r} does not exist")
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path} is not valid TOML: {e}") from None


def normalise(spec: dict | str | Path, retries: int | None = None) -> dict:
    """{"name", "parts": [{name, run, base, grid, columns, resources, retries}, …]} with every key checked."""
    raw = read_spec(spec)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise InputError(f"unknown sweep spec keys {unknown}; a spec has {sorted(TOP_KEYS)}")
    name = str(raw.get("name") or spec_name(spec))
    shared = {"retries": raw.get("retries", 1), "resources": raw.get("resources", {})}
    parts_in = ([raw] if "run" in raw else []) + list(raw.get("part", []))
    if not parts_in:
        raise InputError('a sweep spec needs run = "<run module>" (or [[part]] tables that each name one)')
    parts = []
    for i, p in enumerate(parts_in):
        bad = sorted(set(p) - PART_KEYS - ({"part"} if p is raw else set()))
        if bad:
            raise InputError(f"unknown keys {bad} in sweep part {p.get('name', i)!r}; a part has {sorted(PART_KEYS)}")
        if "run" not in p:
            raise InputError(f"sweep part {p.get('name', i)!r} names no run")
        res = {"cpus": 1, "gpus": 0, **shared["resources"], **p.get("resources", {})}
        if sorted(res) != ["cpus", "gpus"]:
            raise InputError(f"resources take cpus and gpus, got {sorted(res)}")
        grid = p.get("grid", {})
        for axis, values in grid.items():
            if not isinstance(values, list) or not values:
                raise InputError(f"grid axis {axis!r} needs a non-empty list of values, got {values!r}")
        r = p.get("retries", shared["retries"]) if retries is None else retries
        if not isinstance(r, int) or r < 0:
            raise InputError(f"retries must be an integer ≥ 0, got {r!r}")
        parts.append(
            {
                "name": str(p.get("name") or (name if p is raw else f"part{i}")),
                "run": str(p["run"]),
                "base": p.get("base", {}),
                "grid": grid,
                "columns": p.get("columns", {}),
                "resources": res,
                "retries": r,
            }
        )
    return {"name": name, "parts": parts}


def run_module(name: str):
    """nextk.runs.<name>, or an importable module path; it must follow the run-layer convention."""
    if name in NOT_A_CELL:
        raise InputError(f"a sweep cell cannot be a {name!r} run")
    path = name if "." in name else f"nextk.runs.{name}"
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as e:
        raise InputError(f"no run module {name!r} ({e})") from None
    if not (hasattr(module, "Config") and hasattr(module, "run")):
        raise InputError(f"{path} is not a run module (it needs a Config dataclass and run(cfg, out, …))")
    return module


def set_path(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            d[k] = {} if d.get(k) is None else d[k]
            if not isinstance(d[k], dict):
                raise InputError(f"grid axis {dotted!r}: {k!r} is not a dict field")
        d = d[k]
    d[keys[-1]] = value


def slug(axes: dict) -> str:
    """A readable part of a cell id: the axis values that vary, e.g. 'sizes4-seed1-length12'."""
    parts = []
    for key, value in axes.items():
        v = value if isinstance(value, str) else canonical(value)
        v = re.sub(r"[\[\]{}\"' ]", "", v).replace(",", "_").replace(":", "=")[:16]
        parts.append(key.rsplit(".", 1)[-1] + v)
    return re.sub(r"[^A-Za-z0-9_.=+-]", "", "-".join(parts))[:60].strip("-.")


def digest(module_name: str, config: dict) -> str:
    """The first 10 hex digits of the SHA-256 of the canonical JSON of (run module, full config): the cell."""
    return hashlib.sha256(canonical({"run": module_name, "config": config}).encode()).hexdigest()[:10]


def expand(spec: dict | str | Path, retries: int | None = None) -> list[Cell]:
    """Every cell of every part, in grid order; identical configs (across parts too) are one cell."""
    spec = spec if isinstance(spec, dict) and "parts" in spec else normalise(spec, retries)
    cells: dict[str, Cell] = {}
    for part in spec["parts"]:
        module = run_module(part["run"])
        axes = list(part["grid"].items())
        varying = {name for name, values in axes if len(values) > 1}
        for values in itertools.product(*[v for _, v in axes]):
            point = {name: value for (name, _), value in zip(axes, values)}
            merged = json.loads(json.dumps(part["base"]))
            for name, value in point.items():
                set_path(merged, name, json.loads(json.dumps(value)))
            try:
                cfg = config_from(module.Config, merged)  # every number checked: a bad cell stops the sweep here
                if hasattr(cfg, "source") and isinstance(getattr(cfg, "source_params", None), dict):
                    make_source(cfg.source, **cfg.source_params)  # and every cell's source built (a bad pattern…)
            except (TypeError, InputError) as e:
                cell = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise InputError(f"sweep part {part['name']!r}{' cell ' + cell if cell else ''}: {e}") from None
            full = json.loads(json.dumps(asdict(cfg)))
            key = digest(module.__name__, full)
            if key in cells:
                cells[key].parts.append(part["name"])
                continue
            short = re.sub(r"[^A-Za-z0-9_]", "_", part["run"].rsplit(".", 1)[-1])
            label = slug({k: v for k, v in point.items() if k in varying})
            res = part["resources"]
            cells[key] = Cell(
                id="-".join(x for x in (short, label, key) if x),
                digest=key,
                part=part["name"],
                run=part["run"],
                config=full,
                axes=point,
                retries=part["retries"],
                cpus=res["cpus"],
                gpus=res["gpus"],
                columns=part["columns"],
                parts=[part["name"]],
            )
    return list(cells.values())


def adopt_folders(out: Path, cells: list[Cell]) -> None:
    """A cell whose config already ran under another name (another spec or part: same digest) keeps that folder."""
    folder = Path(out) / CELLS
    existing = {p.name.rsplit("-", 1)[-1]: p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else {}
    for cell in cells:
        cell.id = existing.get(cell.digest, cell.id)


# ---------------------------------------------------------------------------------------------- one cell


def run_cell(kind: str, config: dict, folder: Path, threads: int = 1) -> dict:
    """Run one cell in this process: torch on `threads` threads (the thread policy, nextk/threads.py), the run's
    log in folder/log.txt."""
    from nextk.threads import set_threads

    set_threads(threads)
    module = run_module(kind)
    cfg = config_from(module.Config, config)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOG, "a") as fh:

        def log(*args, **kwargs):
            fh.write(plain(" ".join(str(a) for a in args)) + "\n")  # a text file: markup rendered away
            fh.flush()

        log(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}")
        return module.run(cfg, folder, log=log, progress=False)


def _watch_driver(lifeline) -> None:
    """A cell process ends itself the moment the sweep's driver is gone, so a killed sweep (even by SIGKILL)
    leaves no cell running behind it to write into a folder the resumed sweep runs again. The cell's parent is
    the fork server, which outlives the driver while any cell runs (each cell holds the server's alive pipe),
    so the cell watches the driver itself: `lifeline` is the read end of a pipe whose only write end the driver
    holds, and reading it ends (EOF) when the driver exits, however it exits. On Linux the cell also dies with
    the fork server (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the server died before the request took hold
            os._exit(143)

    def watch():
        try:
            lifeline.recv_bytes()  # the driver never writes: this returns only by EOF
        except (EOFError, OSError):
            pass
        os._exit(143)

    threading.Thread(target=watch, daemon=True).start()


def _local_cell(kind: str, config: dict, folder: str, threads: int, lifeline) -> None:
    """The target of a local cell process: exit 0 when the run returned, 1 with error.txt when it raised."""
    _watch_driver(lifeline)
    try:
        run_cell(kind, config, Path(folder), threads)
    except BaseException:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / ERROR).write_text(traceback.format_exc())
        os._exit(1)


def _ray_cell(kind: str, config: dict, folder: str, token: str, threads: int, shipped: dict) -> dict:
    """The body of a Ray task. On the driver's file system (a local cluster, or a shared disk: the token file
    matches) the cell runs in its own folder; elsewhere in a temporary folder seeded with the shipped files,
    whose files come back (paths inside them rewritten to the driver's folder)."""
    import socket

    folder_ = Path(folder)
    token_file = folder_.parent.parent / TOKEN
    shared = token_file.is_file() and token_file.read_text() == token
    where = folder_ if shared else Path(tempfile.mkdtemp(prefix="nextk-cell-"))
    if not shared:
        for rel, data in shipped.items():
            (where / rel).parent.mkdir(parents=True, exist_ok=True)
            (where / rel).write_bytes(data)
    t0 = time.perf_counter()
    try:
        run_cell(kind, config, where, threads)
        ok, error = True, ""
    except Exception:
        ok, error = False, traceback.format_exc()
    files = None
    if not shared:
        files = {}
        for p in sorted(where.rglob("*")):
            if p.is_file():
                data = p.read_bytes()
                if p.suffix in (".json", ".md", ".txt"):
                    data = data.replace(str(where).encode(), str(folder_).encode())
                files[str(p.relative_to(where))] = data
        shutil.rmtree(where, ignore_errors=True)
    return {"ok": ok, "error": error, "seconds": time.perf_counter() - t0, "files": files, "host": socket.gethostname()}


# ---------------------------------------------------------------------------------------------- backends


@dataclass
class Outcome:
    ok: bool
    error: str = ""
    seconds: float = 0.0


def describe_exit(code: int | None) -> str:
    if code is None:
        return "the cell's process did not report"
    if code < 0:
        try:
            return f"the cell's process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the cell's process was killed by signal {-code}"
    return f"the cell's process exited with code {code} without a result"


@contextlib.contextmanager
def _main_hidden():
    """Start a process without it re-running the caller's __main__ (a script without a main guard, `python -m
    nextk`): a cell needs only importable modules, so the child is not told where the main module lives."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        for k in saved:
            if k == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[k]
        yield
    finally:
        for k, v in saved.items():
            main.__dict__[k] = v


class Backend:
    """What both backends share: `running` cells up to `limit` at once, each in its own folder."""

    out: Path
    limit: int
    running: dict

    def free(self) -> bool:
        return len(self.running) < self.limit

    def busy(self) -> bool:
        return bool(self.running)

    def folder(self, cell: Cell) -> Path:
        folder = self.out / CELLS / cell.id
        folder.mkdir(parents=True, exist_ok=True)
        return folder


class LocalBackend(Backend):
    """One fresh process per cell attempt (forked from a server that imported torch and the run modules once),
    at most `workers` at a time. A process that raises leaves error.txt; one that dies is named by its exit."""

    def __init__(self, out: Path, workers: int, kinds: set[str]):
        import multiprocessing as mp

        self.out, self.limit, self.running, self.lifelines = out, max(1, workers), {}, {}
        self.ctx = mp.get_context("forkserver")
        preload = ["nextk.runs.sweep"] + [run_module(k).__name__ for k in sorted(kinds)]
        try:
            import torch  # noqa: F401

            preload[:0] = ["torch", "torch._dynamo"]  # the optimisers import dynamo: seconds, once per server
        except ImportError:
            pass
        self.ctx.set_forkserver_preload(preload)

    def submit(self, cell: Cell) -> None:
        folder = self.folder(cell)
        (folder / ERROR).unlink(missing_ok=True)
        lifeline, held = self.ctx.Pipe(duplex=False)  # the cell reads, the driver alone holds the write end
        p = self.ctx.Process(
            target=_local_cell,
            args=(cell.run, cell.config, str(folder), cell.threads, lifeline),
            name=f"nextk-cell-{cell.id}",
        )
        with _main_hidden():
            p.start()
        lifeline.close()
        self.running[p.sentinel] = (p, cell, time.perf_counter())
        self.lifelines[p.sentinel] = held

    def poll(self, timeout: float = 1.0) -> list[tuple[Cell, Outcome]]:
        from multiprocessing.connection import wait

        done = []
        for sentinel in wait(list(self.running), timeout):
            p, cell, t0 = self.running.pop(sentinel)
            p.join()
            self.lifelines.pop(sentinel).close()
            seconds = time.perf_counter() - t0
            err = self.out / CELLS / cell.id / ERROR
            if p.exitcode == 0:
                done.append((cell, Outcome(True, seconds=seconds)))
            else:
                text = err.read_text() if err.is_file() else describe_exit(p.exitcode)
                done.append((cell, Outcome(False, text, seconds)))
        return done

    def shutdown(self) -> None:
        for p, _, _ in self.running.values():
            p.terminate()
        for p, _, _ in self.running.values():
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        self.running.clear()
        for held in self.lifelines.values():
            held.close()
        self.lifelines.clear()


class RayBackend(Backend):
    """Each cell a Ray task with its CPU/GPU request (Ray's own retries off: the sweep counts attempts). Connects
    to `address` ("auto", "ray://…"), or starts a local Ray; one already initialised in this process is used."""

    def __init__(self, out: Path, workers: int | None, address: str | None, log):
        try:
            import ray
        except ImportError:
            raise InputError("the ray backend needs Ray: pip install 'nextk[ray]'") from None
        self.ray, self.out, self.log = ray, out, log
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, log_to_driver=False)
        self.token = secrets.token_hex(16)
        (out / TOKEN).write_text(self.token)
        self.task = ray.remote(_ray_cell)
        self.limit = workers or 10**9
        self.running = {}

    def submit(self, cell: Cell) -> None:
        folder = self.folder(cell)
        shipped, total = {}, 0
        for p in sorted(folder.rglob("*")):  # what a killed attempt left: a worker elsewhere resumes from it
            if p.is_file() and p.name not in (CELL, ERROR):
                total += p.stat().st_size
                if total > SHIP_LIMIT:
                    shipped = {}
                    break
                shipped[str(p.relative_to(folder))] = p.read_bytes()
        ref = self.task.options(
            num_cpus=cell.cpus, num_gpus=cell.gpus, max_retries=0, retry_exceptions=False, name=f"nextk-{cell.id}"
        ).remote(cell.run, cell.config, str(folder), self.token, cell.threads, shipped)
        self.running[ref] = (cell, time.perf_counter())

    def poll(self, timeout: float = 1.0) -> list[tuple[Cell, Outcome]]:
        ready, rest = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        done = []
        for ref in ready:
            cell, t0 = self.running.pop(ref)
            try:
                res = self.ray.get(ref)
            except Exception as e:  # the worker died, the node went away, the task was cancelled
                done.append(
                    (cell, Outcome(False, f"the Ray task failed: {type(e).__name__}: {e}", time.perf_counter() - t0))
                )
                continue
            folder = self.out / CELLS / cell.id
            for rel, data in (res["files"] or {}).items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                tmp = folder / (rel + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, folder / rel)
            if not res["ok"]:
                (folder / ERROR).write_text(res["error"])
            done.append((cell, Outcome(res["ok"], res["error"], res["seconds"])))
        return done

    def shutdown(self) -> None:
        for ref in list(self.running):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass
        self.running.clear()
        if self.started:
            self.ray.shutdown()


# ---------------------------------------------------------------------------------------------- the driver


def finished(out: Path, cell: Cell) -> bool:
    path = out / CELLS / cell.id / CELL
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except json.JSONDecodeError:
        return False


def record(out: Path, cell: Cell, status: str, attempts: int, errors: list[str], seconds: float, backend: str) -> None:
    write_json(
        out / CELLS / cell.id / CELL,
        {
            "id": cell.id,
            "run": cell.run,
            "parts": cell.parts,
            "axes": cell.axes,
            "config": cell.config,
            "status": status,
            "attempts": attempts,
            "errors": errors,
            "seconds": seconds,
            "backend": backend,
        },
    )


def last_line(error: str) -> str:
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def deterministic(error: str) -> bool:
    """A cell that failed on bad input (InputError) fails the same way again: not retried."""
    return last_line(error).split(":", 1)[0].rsplit(".", 1)[-1] == "InputError"


def schedule(cells: list[Cell], backend, out: Path, name: str, log) -> None:
    """Run the cells on the backend; retry failures; write each cell's cell.json as it settles."""
    queue, attempts, errors, seconds = deque(cells), {}, {}, {}
    done = failed = 0
    total = len(cells)
    while queue or backend.busy():
        while queue and backend.free():
            cell = queue.popleft()
            attempts[cell.id] = attempts.get(cell.id, 0) + 1
            backend.submit(cell)
        for cell, outcome in backend.poll(1.0):
            seconds[cell.id] = seconds.get(cell.id, 0.0) + outcome.seconds
            if outcome.ok:
                done += 1
                record(out, cell, "ok", attempts[cell.id], errors.get(cell.id, []), seconds[cell.id], name)
                log(escape(f"[{done + failed}/{total}] {cell.id} done in {outcome.seconds:.1f} s"))
                continue
            errors.setdefault(cell.id, []).append(outcome.error)
            if attempts[cell.id] <= cell.retries and not deterministic(outcome.error):
                log(
                    escape(
                        f"{cell.id} failed (attempt {attempts[cell.id]} of {cell.retries + 1}): "
                        f"{last_line(outcome.error)}"
                    )
                )
                queue.append(cell)
            else:
                failed += 1
                record(out, cell, "failed", attempts[cell.id], errors[cell.id], seconds[cell.id], name)
                log(
                    escape(
                        f"[{done + failed}/{total}] {cell.id} FAILED after {attempts[cell.id]} attempts: "
                        f"{last_line(outcome.error)}"
                    )
                )


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a sweep: stop the cells like Ctrl-C does."""


def _terminate(signum, frame):
    raise _Terminated()


def execute_sweep(spec, out: Path, how, *, log=quiet) -> dict:
    """Run every unfinished cell of the spec into out/cells/, then write the table. Returns the summary.
    `how`: where and how to run, anything with workers, backend, address and retries (a sweep or reproduce
    Config)."""
    workers, backend, address, retries = how.workers, how.backend, how.address, how.retries
    check_option("backend", backend, BACKENDS)
    t0 = time.perf_counter()
    norm = normalise(spec, retries)
    cells = expand(norm)
    out = Path(out).resolve()
    (out / CELLS).mkdir(parents=True, exist_ok=True)
    adopt_folders(out, cells)
    write_json(out / "spec.json", norm)
    todo = [c for c in cells if not finished(out, c)]
    per_cell = max(1.0, max((c.cpus for c in todo), default=1.0))
    n_workers = workers or max(1, int((os.cpu_count() or 1) // per_cell))
    log(
        f"sweep {norm['name']}: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run "
        f"({backend}{', ' + str(n_workers) + ' workers' if backend == 'local' else ''})"
    )
    if todo:
        if backend == "local":
            runner = LocalBackend(out, n_workers, {c.run for c in todo})
        else:
            runner = RayBackend(out, workers, address, log)
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            schedule(todo, runner, out, backend, log)
        finally:
            runner.shutdown()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    rows = collect(out, cells)
    paths = write_table(rows, out)
    failures = [
        {"cell": r["cell"], "attempts": r["attempts"], "error": r["error"]}
        for r in {r["cell"]: r for r in rows if r["status"] != "ok"}.values()
    ]
    return {
        "name": norm["name"],
        "cells": len(cells),
        "skipped": len(cells) - len(todo),
        "ran": len(todo),
        "ok": sum(1 for c in cells if finished(out, c)),
        "failed": failures,
        "backend": backend,
        "workers": n_workers if backend == "local" else workers,
        "table": {k: str(p.name) for k, p in paths.items()},
        "rows": len(rows),
        "columns": columns_of(rows),
        "seconds": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------------------------- the table


def cell_rows(out: Path, cell: Cell) -> list[dict]:
    folder = out / CELLS / cell.id
    rec = json.loads((folder / CELL).read_text()) if (folder / CELL).is_file() else {}
    status = rec.get("status", "not run")
    lead = {
        "cell": cell.id,
        "part": ",".join(cell.parts),
        "run": cell.run,
        "status": status,
        "attempts": rec.get("attempts", 0),
        "error": last_line((rec.get("errors") or [""])[-1]) if status != "ok" else "",
        "cell_seconds": rec.get("seconds"),
    }
    config = flat_config(cell.config)
    if status != "ok":
        return [lead | config]
    res = read_json(folder / RESULTS)
    module = run_module(cell.run)
    short = module.__name__.rsplit(".", 1)[-1] if module.__name__.startswith("nextk.runs.") else None
    maker = getattr(module, "table_rows", None) or ROWS.get(short) or (lambda r, c: [scalars(r)])
    extra = {}
    for name, path in cell.columns.items():
        extra |= estimate(name, lookup(res, path))
    rows = []
    for r in maker(res, cell.config) or [{}]:
        row = dict(lead | config)
        for k, v in (r | extra).items():
            if k in LEAD:
                k = f"result.{k}"
            elif k in config and config[k] != v:  # the measured value keeps the name; the config's moves aside
                row[f"config.{k}"] = row.pop(k)
            row[k] = v
        rows.append({k: clean(v) for k, v in row.items()})
    return rows


def recorded_cells(out: Path) -> list[Cell]:
    """The cells a sweep folder holds, rebuilt from their cell.json records (whatever spec made them)."""
    cells = []
    for path in sorted((Path(out) / CELLS).glob(f"*/{CELL}")):
        rec = json.loads(path.read_text())
        cells.append(
            Cell(
                id=path.parent.name,
                digest=path.parent.name.rsplit("-", 1)[-1],
                part=(rec.get("parts") or [""])[0],
                run=rec["run"],
                config=rec["config"],
                axes=rec.get("axes", {}),
                retries=0,
                cpus=1,
                gpus=0,
                columns={},
                parts=rec.get("parts", []),
            )
        )
    return cells


def rebuild_table(out: Path) -> list[dict]:
    """Rewrite OUT/table.* from every recorded cell (e.g. after the table's columns changed); returns the rows."""
    rows = collect(out, recorded_cells(out))
    write_table(rows, Path(out))
    return rows


def collect(out: Path, cells: list[Cell]) -> list[dict]:
    return [row for cell in cells for row in cell_rows(Path(out), cell)]


# ---------------------------------------------------------------------------------------------- the run layer


def run(cfg: Config, out: Path, *, log=quiet, progress: bool = False, force_new: bool = False) -> dict:
    """Run the sweep into `out` (resuming it), write the table; results.json is the summary."""
    expand(cfg.spec, cfg.retries)  # a missing or malformed spec, or any cell's bad config, fails before the folder
    prepare(out, cfg, extendable=tuple(f.name for f in fields(Config)), force_new=force_new)
    res = execute_sweep(cfg.spec, out, cfg, log=log)
    write_json(Path(out) / RESULTS, res)
    return res


def sweep(
    spec: dict | str | Path,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    retries: int | None = None,
    log=quiet,
) -> dict:
    """Run a sweep spec (a TOML path or a dict) into `out` (default ./nextk-runs/sweep-NAME; the same folder
    resumes). Returns the summary with "rows": the table as a list of dicts."""
    folder = Path(out) if out is not None else default_out(spec)
    res = run(
        Config(spec if isinstance(spec, dict) else str(spec), workers, backend, address, retries), folder, log=log
    )
    return {**res, "folder": str(folder), "rows": read_table(folder)}


def default_out(spec) -> Path:
    """./nextk-runs/sweep-NAME, without a timestamp: running the same spec again resumes it."""
    try:
        name = normalise(spec)["name"]
    except (InputError, OSError):
        name = spec_name(spec)
    return Path("nextk-runs") / f"sweep-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"


def show(res: dict):
    from rich.markup import escape
    from rich.table import Table

    t = Table(
        title=f"sweep {escape(res['name'])}: {res['ok']} of {res['cells']} cells finished ({res['skipped']} skipped "
        f"as already done), {len(res['failed'])} failed, {res['seconds']:.0f} s"
    )
    for c in ("failed cell", "attempts", "error"):
        t.add_column(c)
    for f in res["failed"]:
        t.add_row(escape(f["cell"]), str(f["attempts"]), escape(f["error"]))  # data text, not markup
    t.caption = f"table: {', '.join(res['table'].values())} ({res['rows']} rows, {len(res['columns'])} columns)"
    return [t]


def draw(results: dict, out: Path) -> list[Path]:
    return []  # each cell keeps its own plots: `nextk plot OUT/cells/<id>` draws them
