"""A/B tests of a candidate release against the one serving: the endpoint's two production variants
(:mod:`bqx.ab.endpoint`), the live error of each (:mod:`bqx.ab.live`) and the decision (:mod:`bqx.ab.decide`)."""

CURRENT, CANDIDATE = "current", "candidate"
VARIANTS = (CURRENT, CANDIDATE)
