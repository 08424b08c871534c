"""Campaigns: accounts linked into one actor across content, infrastructure and timing.

Three stages, each its own module:

- `activity`: in the detection workers, each closed window becomes *fingerprint shares*: per
  fingerprint (IP prefix, ASN, TLS fingerprint, SDK, prompt template, prompt MinHash band, signup
  cohort) the accounts that used it, with their org and whether their behaviour is
  extraction-shaped. Sent to `fingerprint.activity`, partitioned by fingerprint: the repartition.
- `linking`: per fingerprint and window, the shares of all detection partitions are merged and the
  sharing is weighed by how surprising it is; unusual sharing becomes *link evidence*.
- `resolver`: evidence is merged into campaigns with stable ids, a lifecycle and a score.
"""
