"""Shared printing for the claim scripts: the claim, what was computed, and the verdict."""


def report(claim: str, computed: str, verdict: str) -> None:
    print(f"claim:    {claim}")
    print(f"computed: {computed}")
    print(f"verdict:  {verdict}")
