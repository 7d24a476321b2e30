"""What every run shares: run folders that belong to one config, strict JSON written atomically."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path

from nextk.checkpoint import atomic_write
from nextk.errors import InputError

RESULTS, CONFIG = "results.json", "config.json"


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
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{str(path)!r} is not valid JSON: {e}") from None


def prepare(out: Path, cfg, *, extendable: tuple[str, ...] = (), force_new: bool = False, log=None) -> dict | None:
    """Claim `out` for `cfg` (a dataclass). A folder belongs to one config: if it already holds a
    config.json that differs in any field other than `extendable` ones (e.g. the step budget), refuse
    with an error naming the fields, unless `force_new` (which clears the folder's run files). Returns
    the previous config (None for a new folder) after writing the new one."""
    out = Path(out)
    new = {"run": run_kind(cfg), **json.loads(json.dumps(asdict(cfg)))}  # tuples → lists, as read back from disk
    old = None
    if (out / CONFIG).is_file():
        old = read_json(out / CONFIG)
        differ = [f.name for f in fields(cfg) if f.name not in extendable and old.get(f.name) != new[f.name]]
        if differ and not force_new:
            shown = ", ".join(f"{name}: {old.get(name)!r} → {new[name]!r}" for name in differ)
            raise InputError(f"{out} holds a run with another config ({shown}); use a new --out folder or --force-new")
        if differ:
            for stale in out.iterdir():
                if stale.is_file():
                    stale.unlink()
            old = None
    out.mkdir(parents=True, exist_ok=True)
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
    return cls(**d)


def pick(cfg, *names: str) -> dict:
    """{name: cfg.name} for the named Config fields: the keyword arguments a run passes on unchanged."""
    return {name: getattr(cfg, name) for name in names}
