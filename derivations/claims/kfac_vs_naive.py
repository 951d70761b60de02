"""Seed: "K-FAC ... compute[s] natural gradients 10x faster than naive Fisher inverse".

The check is numeric.claims.kfac_vs_naive; `symgeo report --claims` collects every claim."""
from numeric.claims import kfac_vs_naive

print(kfac_vs_naive())
