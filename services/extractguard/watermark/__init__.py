"""Watermark evidence: the batch audit that tests suspect text against the keys that served whom."""
