"""What every run shares: run folders that belong to one config and to one process at a time (a lock),
configs whose every number is checked before any work, strict JSON written atomically."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import MISSING, asdict, fields
from datetime import datetime
from pathlib import Path

from rich.markup import escape

from nextk.checkpoint import atomic_write
from nextk.errors import InputError, check_memory, check_number

RESULTS, CONFIG, LOCK = "results.json", "config.json", ".lock"
NUMBERS = {"int": int, "float": float}
_HELD: dict[str, int] = {}  # resolved folder → the open file descriptor holding its lock


def default_folder(name: str) -> Path:
    """./nextk-runs/NAME-YYYYmmdd-HHMMSS: where a run goes when no --out is given."""
    return Path("nextk-runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def write_json(path: Path, obj) -> Path:
    """Strict JSON (no NaN), written atomically: a reader never sees half a file."""
    text = json.dumps(obj, indent=2, allow_nan=False)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))
    return Path(path)


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{str(path)!r} does not exist" + ("" if path.parent.is_dir() else " (no such folder)"))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(
            f"{str(path)!r} is not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}): not a file nextk wrote"
        ) from None
    except json.JSONDecodeError as e:
        raise InputError(f"{str(path)!r} is not valid JSON: {e}") from None


def check_config(cfg) -> None:
    """Every int and float field of a run config (and every number of a list field) within its bounds
    (nextk.errors.BOUNDS): one InputError naming the field, before any folder is made or work done."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        parts = {p.strip() for p in str(f.type).replace("Optional[", "").rstrip("]").split("|")}
        if value is None and "None" in parts:
            continue
        kind = next((NUMBERS[p] for p in ("int", "float") if p in parts), None)
        if kind is not None:
            check_number(f.name, value, kind, default=None if f.default is MISSING else f.default)
        elif isinstance(value, (list, tuple)):
            for v in value:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    check_number(f.name, v, float if isinstance(v, float) else int)


def lock(out: Path) -> None:
    """Hold out/.lock (fcntl.flock) for the rest of this process, or until `release`: a second process that
    claims the folder is refused, naming the holder's pid. The kernel drops the lock when the process ends,
    crashed or killed, so a stale lock never blocks a resume."""
    out = Path(out)
    key = str(out.resolve())
    if key in _HELD:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise InputError(f"cannot write the run folder {str(out)!r}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        msg = f"{out} is in use by another nextk run (pid {holder}); wait for it, or use another --out"
        raise InputError(msg) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = fd


def release(out: Path | None = None) -> None:
    """Let go of the lock on `out` (every lock this process holds when None)."""
    keys = list(_HELD) if out is None else [str(Path(out).resolve())]
    for key in keys:
        fd = _HELD.pop(key, None)
        if fd is not None:
            os.close(fd)


def differing(out: Path, cfg, extendable: tuple[str, ...] = ()) -> tuple[dict | None, list[str]]:
    """(the config.json in `out` or None, the fields of `cfg` other than `extendable` ones that differ from it)."""
    if not (Path(out) / CONFIG).is_file():
        return None, []
    old = read_json(Path(out) / CONFIG)
    new = json.loads(json.dumps(asdict(cfg)))  # tuples → lists, as read back from disk
    return old, [f.name for f in fields(cfg) if f.name not in extendable and old.get(f.name) != new[f.name]]


def prepare(out: Path, cfg, *, extendable: tuple[str, ...] = (), force_new: bool = False, log=None) -> dict | None:
    """Claim `out` for `cfg` (a dataclass): check every number of cfg, lock the folder for this process, then
    compare. A folder belongs to one config: if it already holds a config.json that differs in any field other
    than `extendable` ones (e.g. the step budget), refuse with an error naming the fields, unless `force_new`
    (which clears the folder's run files). Returns the previous config (None for a new folder) after writing
    the new one."""
    out = Path(out)
    check_config(cfg)
    new = {"run": run_kind(cfg), **json.loads(json.dumps(asdict(cfg)))}  # tuples → lists, as read back from disk
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is a file, not a run folder")
    lock(out)
    old, differ = differing(out, cfg, extendable)
    if differ and not force_new:
        shown = ", ".join(f"{name}: {old.get(name)!r} → {new[name]!r}" for name in differ)
        raise InputError(f"{out} holds a run with another config ({shown}); use a new --out folder or --force-new")
    if differ:
        for stale in out.iterdir():
            if stale.is_file() and stale.name != LOCK:
                stale.unlink()
        old = None
    write_json(out / CONFIG, new)
    if log is not None:
        from rich.markup import escape

        log(f"nextk {new['run']} → [bold]{escape(str(out))}[/bold]")
    return old


def run_kind(cfg) -> str:
    """The run module a config belongs to ("demo", "train", …): config.json records it for `nextk plot`."""
    return type(cfg).__module__.rsplit(".", 1)[-1]


def config_from(cls, d: dict):
    """Rebuild a config dataclass from its JSON (unknown keys are an error, missing ones take defaults)."""
    names = {f.name for f in fields(cls)}
    extra = sorted(set(d) - names)
    if extra:
        raise InputError(f"unknown {cls.__name__} fields {extra}; it has {sorted(names)}")
    try:
        cfg = cls(**d)
    except TypeError as e:  # a required field missing
        raise InputError(f"{cls.__name__}: {e}") from None
    check_config(cfg)
    return cfg


def pick(cfg, *names: str) -> dict:
    """{name: cfg.name} for the named Config fields: the keyword arguments a run passes on unchanged."""
    return {name: getattr(cfg, name) for name in names}


def trained_on(checkpoint: str) -> dict | None:
    """The source and parameters recorded in the checkpoint's run folder (None if not recorded)."""
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent
    if not (folder / CONFIG).is_file():
        return None
    cfg = read_json(folder / CONFIG)
    return {"source": cfg.get("source"), "source_params": cfg.get("source_params", {})} if "source" in cfg else None


def check_trained_on(checkpoint: str, name: str, source, allow: bool, log) -> dict | None:
    """A checkpoint is measured (eval) or boosted (boost) on the source it was trained on: another source or
    other parameters are refused, naming both, unless `allow` (--allow-other-source), which logs a warning.
    Returns what the checkpoint's folder records (None when it records nothing)."""
    from nextk.measure import check_vocab
    from nextk.sources import make_source

    origin = trained_on(checkpoint)
    if origin is None:
        return None
    trained = make_source(origin["source"], **origin["source_params"])
    origin_params = trained.params
    if (origin["source"], origin_params) != (name, source.params):
        msg = f"{checkpoint} was trained on {origin['source']} {origin_params}, not {name} {source.params}"
        try:  # token ids that would mean other tokens are never allowed: the one rule of measure.check_vocab
            check_vocab(trained, source, "the checkpoint's training source against this one")
        except InputError as e:
            raise InputError(
                f"{msg}; its token names {trained.vocab}, the source's {source.vocab}: {e} (token ids would mean "
                "other tokens there; refused even with --allow-other-source)"
            ) from None
        if not allow:
            raise InputError(msg + "; pass --allow-other-source to use it there anyway")
        log(f"[yellow]warning:[/yellow] {escape(msg)}")
    return origin


def check_documents(docs: int, length: int, what: str, copies: int = 4) -> None:
    """Documents a run holds at once (int64 tokens, with `copies` working copies: log-probabilities, shuffles,
    batches) must fit in memory: refused with the figure before any is drawn."""
    check_memory(8 * copies * docs * length, f"{what} holding {docs:,} documents of {length:,} tokens")
