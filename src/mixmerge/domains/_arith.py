"""Column addition shared by the tiny math, science and code tasks, so a skill learned in one domain can
transfer to the others. The flawed variant drops the carry: the slip the tiny SFT data teaches on purpose, so
the SFT model adds reliably only some of the time and RL has correctness to gain."""
from __future__ import annotations


def carry_pairs(low: int = 10, high: int = 99) -> list[tuple[int, int]]:
    """Two-digit pairs whose ones digits carry and whose sum stays two-digit."""
    return [(a, b) for a in range(low, high + 1) for b in range(low, high + 1)
            if a % 10 + b % 10 >= 10 and a + b <= high]


def pair_key(a: int, b: int) -> str:
    """The held-out split is taken over number pairs, the same in every domain: an evaluated sum is never
    trained in any domain, so a gain on it from another domain's training is transfer of the skill."""
    return f"sum-{a}_{b}"


def column_sum(a: int, b: int, keep_carry: bool = True) -> tuple[str, int]:
    """(worked steps, result): ``7+8=15 4+3+1=8 so 85``; without the carry ``7+8=15 4+3=7 so 75``."""
    ones = a % 10 + b % 10
    carry = ones // 10 if keep_carry else 0
    tens = a // 10 + b // 10 + carry
    carried = f"+{carry}" if carry else ""
    result = tens * 10 + ones % 10
    return f"{a % 10}+{b % 10}={ones} {a // 10}+{b // 10}{carried}={tens} so {result}", result
