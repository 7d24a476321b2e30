"""All benchmarks, one table row each (BENCHMARKS.md records them). Run: make bench"""

import advantage_throughput
import boost_trie
import hmm_throughput
import torch
import train_throughput

if __name__ == "__main__":
    torch.set_num_threads(2)
    hmm_throughput.main()
    train_throughput.main()
    advantage_throughput.main()
    boost_trie.main()
