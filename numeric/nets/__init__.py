"""Natural-gradient deep learning with exact output-distribution Fisher matrices from symgeo.

heads: a network's raw outputs as a declared family's parameters (categorical, diagonal normal, unit
normal, Bernoulli, any family), each with its generated Fisher, KL and log-density; pullback: that Fisher
pulled back through the network (matrix-vector product or matrix); flat: weights as one vector; cg:
conjugate gradient. On them: kfac (K-FAC), natural_gradient (NaturalGradient), rl (TRPO and PPO).
Importing this package needs torch.
"""
