"""How a list of inputs is grouped into micro-batches: bounded padded batches, so that a long list costs about what
a loop over it costs in memory, and results can come out while later inputs still run.

A micro-batch of r inputs whose longest has L tokens is run as one padded [r, L] batch; its padded size r·L is kept
within the token budget (an input longer than the budget runs alone). Inputs are taken in their order in groups of
about `GROUP_BUDGETS` budgets' worth of tokens and sorted by length within each group, so that inputs of similar
length share a batch (little padding) while the first results come out after one group, not after the whole list.

The default budget, 1,024 padded tokens, keeps a list's peak memory close to a loop's on the CPU, where bigger
batches gain little time (benchmarks/batching_memory.py, figures in benchmarks/RESULTS.md); on a GPU, where they
do, pass a larger `token_budget`.
"""
from typing import List, Sequence

DEFAULT_TOKEN_BUDGET = 1024
GROUP_BUDGETS = 8


def micro_batches(lengths: Sequence[int], token_budget: int) -> List[List[int]]:
    """The micro-batches (lists of input indices, each in input order) for inputs of the given token lengths, in
    the order they run."""
    if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"token_budget must be a positive number of padded tokens, found {token_budget!r}")
    batches: List[List[int]] = []
    group: List[int] = []
    group_tokens = 0

    def flush_group():
        current: List[int] = []
        for index in sorted(group, key=lambda k: (lengths[k], k)):
            # Ascending lengths: the input added is the batch's longest, so the padded size is rows × its length.
            if current and (len(current) + 1) * lengths[index] > token_budget:
                batches.append(sorted(current))
                current = []
            current.append(index)
        if current:
            batches.append(sorted(current))

    for index, length in enumerate(lengths):
        group.append(index)
        group_tokens += length
        if group_tokens >= GROUP_BUDGETS * token_budget:
            flush_group()
            group, group_tokens = [], 0
    if group:
        flush_group()
    return batches
