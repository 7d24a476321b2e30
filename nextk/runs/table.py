"""The sweep table: which figures of a run's results.json become columns, and the table files.

One row per measured item of a cell (a model at one window size k, a boosting offset, a bit size, a run of
Algorithm 1, a barrier comparison). An estimate `x` becomes the columns x, x_low, x_high, x_stderr, x_n. A run
module may define `table_rows(results, config) -> list[dict]`; otherwise `ROWS[run]` below, otherwise every scalar
of its results.json. Every row of a measurement carries `stage` ("measure", "boost", "bits", "search", "train",
"barrier"), so an analysis picks rows by what was measured, not by which run measured it."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from nextk.runs.common import read_json, write_json

TABLE = "table"  # OUT/table.json, table.csv, table.parquet
LEAD = ("cell", "part", "run", "status", "attempts", "error", "cell_seconds")  # the first columns of every row


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def is_estimate(d) -> bool:
    return isinstance(d, dict) and "value" in d and ("low" in d or "stderr" in d)


def estimate(name: str, e) -> dict:
    """An estimate dict as columns: name, name_low, name_high, name_stderr, name_n (nothing for a missing one)."""
    if not is_estimate(e):
        return {} if e is None else {name: e}
    return {
        name: e.get("value"),
        f"{name}_low": e.get("low"),
        f"{name}_high": e.get("high"),
        f"{name}_stderr": e.get("stderr"),
        f"{name}_n": e.get("n"),
    }


def scalars(d: dict, prefix: str = "") -> dict:
    """Every scalar and estimate of a nested dict, dotted names; lists are left out."""
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if is_estimate(v):
            out |= estimate(name, v)
        elif isinstance(v, dict):
            out |= scalars(v, name + ".")
        elif v is None or isinstance(v, (str, int, float, bool)):
            out[name] = v
    return out


def lookup(d, dotted: str):
    for key in dotted.split("."):
        if isinstance(d, dict):
            d = d.get(key)
        elif isinstance(d, list) and key.lstrip("-").isdigit() and -len(d) <= int(key) < len(d):
            d = d[int(key)]
        else:
            return None
    return d


def source_columns(config: dict) -> dict:
    """The source's name and its parameters other than the length, so tables group by source apart from n."""
    params = {k: v for k, v in (config.get("source_params") or {}).items() if k != "length"}
    return {"source_name": config.get("source"), "source_key": canonical(params)}


def panel_rows(m: dict) -> list[dict]:
    """One row per window k of a measurement panel (nextk.evaluation.measure_model)."""
    rows = []
    for w in m.get("windows", []):
        row = {"k": w.get("k"), "estimator": w.get("estimator")}
        row |= estimate("excess_loss", m.get("excess_loss")) | estimate("kl", m.get("kl"))
        for name, e in (w.get("checkers") or {}).items():
            row |= estimate(f"checker_{name}", e)
        if w.get("learned") is not None:
            row |= estimate("learned", w["learned"])
            row["learned_train_accuracy"] = w["learned"].get("train_accuracy")
        row |= estimate("tv", w.get("tv")) | estimate("theorem3", w.get("theorem3"))
        rows.append(row)
    return rows


def demo_rows(res: dict, config: dict) -> list[dict]:
    rows = []
    for m in res.get("models", []):
        head = {
            "stage": "measure",
            **source_columns(config),
            "length": res.get("length"),
            "family": config.get("model"),
        }
        head |= {"size": m.get("size"), "model_name": m.get("name"), "parameters": m.get("parameters")}
        rows += [head | r for r in panel_rows(m)]
    return rows


def eval_rows(res: dict, config: dict) -> list[dict]:
    head = {"stage": "measure", **source_columns(config), "model_name": res.get("name")}
    head |= {"parameters": res.get("parameters"), "length": (config.get("source_params") or {}).get("length")}
    return [head | r for r in panel_rows(res)]


def train_rows(res: dict, config: dict) -> list[dict]:
    hist = res.get("history") or [{}]
    best = next((r for r in hist if r.get("step") == res.get("best_step")), hist[-1])
    row = {"stage": "train", **source_columns(config), "family": res.get("family"), "model_name": res.get("model")}
    row |= {"size": config.get("width"), "parameters": res.get("parameters"), "steps_done": res.get("steps")}
    return [row | estimate("eval_loss", best.get("eval_loss")) | estimate("excess_loss", best.get("excess_loss"))]


def boost_rows(res: dict, config: dict) -> list[dict]:
    s = res.get("search") or {}
    head = {"stage": "boost", **source_columns(config), "length": res.get("length"), "k": res.get("k")}
    head |= {
        "distinguisher": res.get("distinguisher"),
        "model_name": res.get("model"),
        "chosen_offset": s.get("offset"),
    }
    head |= {"chosen_eta": s.get("eta"), "lemma1_guarantee_overall": s.get("lemma1_guarantee_overall")}
    # a limit step η = ±∞ is stored as null: its kind says which; a held-out gain of −∞ as null with its count
    head |= {"chosen_eta_kind": s.get("eta_kind")}
    head |= {"chosen_gain_zero_probability": (s.get("gain") or {}).get("documents_with_zero_probability")}
    head |= {"lemma1_guarantee_tight": s.get("lemma1_guarantee_tight")}
    head |= estimate("chosen_gain", s.get("gain")) | estimate("kl_before", res.get("kl_before"))
    head |= estimate("kl_after", res.get("kl_after"))
    # Lemma 1's measured side (nextk.runs.verdicts.lemma1): the KL drop from the models' log-probabilities
    drop = res.get("kl_drop") or {}
    head |= estimate("kl_drop", drop) if drop.get("value") is not None else {}
    head |= {
        "kl_drop_method": drop.get("method"),
        "kl_drop_zero_probability": drop.get("documents_with_zero_probability"),
    }
    half = res.get("half_step") or {}  # the same at η = α_fit/2 (nextk.runs.boost.half_step)
    hd = half.get("kl_drop") or {}
    head |= {"half_eta": half.get("eta"), "half_kl_drop_method": hd.get("method")}
    head |= estimate("half_kl_drop", hd) if hd.get("value") is not None else {}
    head |= {"half_kl_drop_zero_probability": hd.get("documents_with_zero_probability")}
    rows = []
    for o in s.get("offsets", []):
        row = {"offset": o.get("offset"), "blocks": o.get("blocks"), "eta": o.get("eta")}
        row |= estimate("alpha", o.get("alpha")) | estimate("gain", o.get("gain"))
        row |= {"lemma1_guarantee": o.get("lemma1_guarantee")} | estimate(
            "gain_at_half_alpha", o.get("gain_at_half_alpha")
        )
        # Lemma 1 fitted on one set, measured on another (nextk.runs.verdicts.lemma1), when the run records them
        row |= estimate("alpha_fit", o.get("alpha_fit")) | estimate(
            "gain_at_half_fit_alpha", o.get("gain_at_half_fit_alpha")
        )
        row |= {"eta_kind": (o.get("eta_choice") or {}).get("kind")}
        rows.append(head | row)
    return rows or [head]


def bits_rows(res: dict, config: dict) -> list[dict]:
    head = {"stage": "bits", **source_columns(config), "length": (config.get("source_params") or {}).get("length")}
    head |= {"model_name": res.get("model")}
    rows = []
    for r in res.get("rows", []):
        row = {"bit_size": r.get("bit_size"), "int_bits": r.get("int_bits"), "frac_bits": r.get("frac_bits")}
        row |= estimate("loss", r.get("loss"))
        for p in panel_rows(r):
            rows.append(head | row | p)
    return rows


def search_rows(res: dict, config: dict) -> list[dict]:
    rows = []
    for i, r in enumerate(res.get("runs", [])):
        stop = r.get("stop_index")
        cfg_at = (r.get("configs") or {}).get(str(stop)) or {}
        bits = cfg_at.get("bits")
        row = {"stage": "search", **source_columns(config), "length": (config.get("source_params") or {}).get("length")}
        row |= {"family": config.get("family"), "repeat": i, "run_seed": config.get("seed", 0) + i}
        row |= {key: r.get(key) for key in ("eps", "k", "j0", "stop_index", "sizes_tried", "delta", "max_start")}
        row |= {"theoretical_max_start": r.get("theoretical_max_start"), "departs": r.get("departs")}
        row["two_sizes"] = None if r.get("sizes_tried") is None else r["sizes_tried"] == 2
        row["parameters"] = (r.get("parameters") or {}).get(str(stop))
        row["model_name"] = f"{config.get('family')} j={stop}"  # the output: size index j of the schedule
        row["bit_size"] = None if not bits else 1 + bits[0] + bits[1]
        meas = (r.get("measurement") or {}).get(str(stop))
        panel = panel_rows(meas)[0] if meas and meas.get("windows") else {"k": r.get("k")}
        rows.append(row | panel | {"k": r.get("k")})
    return rows


def barrier_rows(res: dict, config: dict) -> list[dict]:
    """The barrier report's measured numbers and its computed conclusions (nextk.barrier.conclusions), one row
    per comparison (aspect, item, verdict, sentence) with the estimates compared."""
    from nextk.runs.barrier import report_conclusions

    c = report_conclusions(res)
    rows = []
    s = c.get("sampling", {})
    for name, g in s.get("growth", {}).items():
        row = (
            {"aspect": "sampling_growth", "item": name} | estimate("growth", g) | estimate("degree", s["degree"][name])
        )
        stop = s.get("stopped", {}).get(name, {})
        rows.append(row | {"verdict": stop.get("flag"), "sentence": stop.get("sentence")})
    for v in s.get("versus", []):
        rows.append(
            {
                "aspect": "sampling_versus",
                "item": f"{v['a']} vs {v['b']}",
                "verdict": v["verdict"],
                "sentence": v["sentence"],
            }
            | estimate("growth_a", s["growth"].get(v["a"]))
            | estimate("growth_b", s["growth"].get(v["b"]))
        )
    if "primes" in c:
        tvs = [r["tv"] for r in res.get("primes", []) if r.get("tv") is not None]
        rows.append(
            {
                "aspect": "primes",
                "item": "li approximation",
                "verdict": c["primes"]["flag"],
                "sentence": c["primes"]["sentence"],
                "max_tv": max(tvs) if tvs else None,
            }
        )
        for r in res.get("primes", []):
            rows.append({"aspect": "primes_tv", "item": f"d={r['digits']}", "digits": r["digits"], "tv": r.get("tv")})
    learning = {(r["digits"], r["order"]): r for r in res.get("learning", [])}
    for key, items in c.get("learning", {}).items():
        for x in items:
            a, b = learning.get((x["digits"], "product_first"), {}), learning.get((x["digits"], "factors_first"), {})
            rows.append(
                {
                    "aspect": "learning",
                    "item": key,
                    "digits": x["digits"],
                    "verdict": x["verdict"],
                    "sentence": x["sentence"],
                }
                | estimate("product_first", a.get(key))
                | estimate("factors_first", b.get(key))
            )
    hidden = {r["variant"]: r for r in res.get("hidden", [])}
    plain = res["hidden"][0] if res.get("hidden") else {}
    for x in c.get("hidden", []):
        r = hidden.get(x["variant"], {})
        kind = "visible_tv" if x["verdict"] in ("lower", "not shown lower") else "validity"
        row = {
            "aspect": "hidden",
            "item": f"{x['variant']}: {kind}",
            "variant": x["variant"],
            "verdict": x["verdict"],
            "sentence": x["sentence"],
        }
        if kind == "validity":
            row |= estimate("variant_validity", r.get("validity")) | estimate("plain_validity", plain.get("validity"))
        else:
            row |= {"variant_tv": r.get("visible_tv"), "plain_tv": plain.get("visible_tv")}
        rows.append(row)
    for x in c.get("uniformity", []):
        rows.append({"aspect": "uniformity", "item": x["model"], "verdict": x["verdict"], "sentence": x["sentence"]})
    return [{"stage": "barrier"} | r for r in rows]


def pipeline_rows(res: dict, config: dict) -> list[dict]:
    """The train stage's columns (prefixed train_) beside every follow-up's rows."""
    tcfg = config.get("train") or {}
    head = {f"train_{k}": v for k, v in train_rows(res.get("train") or {}, tcfg)[0].items() if k != "stage"}
    head |= {"family": tcfg.get("model", "gru"), "size": tcfg.get("width", 32)}
    rows = []
    for i, step in enumerate(res.get("then", [])):
        kind = step.get("run")
        sub = {"source": tcfg.get("source"), "source_params": tcfg.get("source_params") or {}}
        sub |= (config.get("then") or [{}] * (i + 1))[i]
        made = ROWS.get(kind, lambda r, c: [scalars(r)])(step.get("results") or {}, sub)
        rows += [head | {"step_index": i} | r for r in made]
    return rows or [head | {"stage": "train"}]


ROWS = {
    "demo": demo_rows,
    "eval": eval_rows,
    "train": train_rows,
    "boost": boost_rows,
    "bits": bits_rows,
    "search": search_rows,
    "barrier": barrier_rows,
    "pipeline": pipeline_rows,
}


def flat_config(config: dict) -> dict:
    out = {}
    for k, v in config.items():
        if isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values()):
            out |= {f"{k}.{kk}": vv for kk, vv in v.items()}
        elif isinstance(v, (dict, list)):
            out[k] = canonical(v)
        else:
            out[k] = v
    return out


def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (dict, list, tuple)):
        return canonical(v)
    return v


def columns_of(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {c: None for c in LEAD}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def write_table(rows: list[dict], out: Path) -> dict[str, Path]:
    """table.json (a list of row dicts), table.csv, and table.parquet when pyarrow is installed."""
    cols = columns_of(rows)
    paths = {"json": write_json(out / f"{TABLE}.json", rows)}
    tmp = out / f"{TABLE}.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    os.replace(tmp, out / f"{TABLE}.csv")
    paths["csv"] = out / f"{TABLE}.csv"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        (out / f"{TABLE}.parquet").unlink(missing_ok=True)
        return paths
    arrays = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            arrays[c] = pa.array(values, pa.bool_())
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            arrays[c] = pa.array(values, pa.int64())
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            arrays[c] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        else:
            arrays[c] = pa.array([None if v is None else str(v) for v in values], pa.string())
    tmp = out / f"{TABLE}.parquet.tmp"
    pq.write_table(pa.table(arrays), tmp)
    os.replace(tmp, out / f"{TABLE}.parquet")
    paths["parquet"] = out / f"{TABLE}.parquet"
    return paths


def read_table(out: Path) -> list[dict]:
    """The rows of a finished sweep (table.json)."""
    return read_json(Path(out) / f"{TABLE}.json")
