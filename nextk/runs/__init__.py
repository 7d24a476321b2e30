"""The run layer: one module per command, each a function from a typed config to a results dict.

Every run module follows one shape:
- a `Config` dataclass whose every field carries its reason in a trailing comment;
- `run(cfg, out: Path, *, log=..., progress=...) -> dict`: builds what it needs from the science
  layer, writes `config.json` first and `results.json` (strict JSON) as results arrive, returns them;
- `draw(results: dict, out: Path) -> list[Path]`: plots drawn from the results dict alone, so
  `nextk plot FOLDER` redraws them without recomputing.

The science layer (sources, models, distinguishers, measures, estimators, boosting, search,
quantisation, bounds, construct) never imports this package, reports or the CLI; the CLI only parses
options into a Config and calls `run`.
"""
