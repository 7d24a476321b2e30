"""The paper's proof as running code: graph RNNs (Definition 3), Appendix C's gadgets (Lemma 18),
gated updates (Lemma 10), synchronised enumeration (Lemma 11), and the boosted LM-RNN of Lemma 3
(with Lemmas 7–9), next to §2.1's two-copy construction; Lemma 12's bit budget. docs/theory.md §9.

    from nextk.construct import hmm_rnn, checker_rnn, boost_rnn, run
    B = boost_rnn(hmm_rnn(q_hmm), checker_rnn(parity_source, k=2), k=2, offset=1, eta=0.9, length=8)
    run(B.graph, x).outputs      # q'(x_t | x_<t) at every multiple of T, as Boosted computes it
"""

from nextk.construct.bits import (
    claim9_int_bits,
    claim10_bound,
    claim10_lambda,
    gamma_for_gain,
    lemma12_bits,
    rho_prime,
)
from nextk.construct.boosted import BoostedRNN, boost_rnn, boost_rounds, lemma3_formula
from nextk.construct.distinguishers import (
    TableDistinguisher,
    automaton_rnn,
    checker_rnn,
    dyck_automaton,
    parity_automaton,
    table_rnn,
    window_indicator,
)
from nextk.construct.enumerate import Layout, gated_copy, synchronized_enumeration
from nextk.construct.execute import GraphLM, GraphRuntimeError, Program, check_sufficiency, run, verify_hidden_set
from nextk.construct.graph import Graph, GraphStats, HiddenSetError, check_hidden_reads
from nextk.construct.lms import hmm_rnn, rational_rnn

__all__ = [
    "BoostedRNN",
    "Graph",
    "GraphLM",
    "GraphRuntimeError",
    "GraphStats",
    "HiddenSetError",
    "Layout",
    "Program",
    "TableDistinguisher",
    "automaton_rnn",
    "boost_rnn",
    "boost_rounds",
    "check_hidden_reads",
    "check_sufficiency",
    "checker_rnn",
    "claim10_bound",
    "claim10_lambda",
    "claim9_int_bits",
    "dyck_automaton",
    "gamma_for_gain",
    "gated_copy",
    "hmm_rnn",
    "lemma12_bits",
    "lemma3_formula",
    "parity_automaton",
    "rational_rnn",
    "rho_prime",
    "run",
    "synchronized_enumeration",
    "table_rnn",
    "verify_hidden_set",
    "window_indicator",
]
