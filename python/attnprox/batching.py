"""How a list of inputs is grouped into micro-batches: bounded padded batches, so that a long list costs about what
a loop over it costs in memory, and results can come out while later inputs still run.

A micro-batch of r inputs whose longest has L tokens is run as one padded [r, L] batch; its padded size r·L is kept
within the token budget (an input longer than the budget runs alone). Inputs are taken in their order in groups of
about `GROUP_BUDGETS` budgets' worth of tokens and sorted by length within each group, so that inputs of similar
length share a batch (little padding) while the first results come out after one group, not after the whole list.

The default budget depends on the device. On the CPU it is 512 padded tokens: batching does not make a CPU
forward faster (benchmarks/RESULTS.md: two 512-token texts in one batch took 1.10× the time of two runs, a
1,024-token budget raised the peak memory by 1.14×), so texts of 512 tokens or more run one by one and shorter
ones share a batch of at most 512 tokens. On CUDA devices it is 8,192 padded tokens, where batches keep the
device busy (not measured here; choose `token_budget` for your GPU's memory).
"""
from typing import List, Sequence

CPU_TOKEN_BUDGET = 512
CUDA_TOKEN_BUDGET = 8192
DEFAULT_TOKEN_BUDGET = CPU_TOKEN_BUDGET  # on the CPU; default_token_budget(device) in general
GROUP_BUDGETS = 8


def default_token_budget(device: str) -> int:
    """The token budget a list runs in when none is given, for a model on `device` ("cpu", "cuda:0")."""
    return CUDA_TOKEN_BUDGET if str(device).startswith("cuda") else CPU_TOKEN_BUDGET


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
