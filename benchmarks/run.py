"""All benchmarks, one markdown table each (BENCHMARKS.md records them). Run: make bench
(`cd benchmarks && ../.venv/bin/python run.py`); BENCH_SMALL=1 or --small: small sizes, a quick check."""

import time
import traceback

import advantage_throughput
import boost_trie
import common
import demo_under_load
import hmm_throughput
import languages
import thread_crossover
import train_throughput

try:  # the Hugging Face row needs the hf extra
    import hf_advantage
except ImportError:
    hf_advantage = None

BENCHMARKS = {
    "HMM log-probability": hmm_throughput,
    "GRU training": train_throughput,
    "Advantage estimation": advantage_throughput,
    "Boosted conditionals": boost_trie,
    "Exact conditionals of a user's language": languages,
    **({"Advantage on a Hugging Face model": hf_advantage} if hf_advantage else {}),
    "Threads: where a second one pays": thread_crossover,
    "`nextk demo` on a shared machine": demo_under_load,  # last: several demo runs, minutes each
}

if __name__ == "__main__":
    common.setup()
    if common.SMALL:
        print("SMALL SIZES (BENCH_SMALL / --small): a check that the scripts run, not a measurement\n")
    results, failed = {}, []
    for name, module in BENCHMARKS.items():
        print(f"### {name}\n\n{module.HEADER}", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = module.main()
        except Exception:  # report and go on: every other row still prints
            failed.append(name)
            traceback.print_exc()
        print(f"\n({time.perf_counter() - t0:.0f} s)\n", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
