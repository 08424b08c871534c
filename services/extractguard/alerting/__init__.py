"""Alerting: rules over detections, one deduplicated alert per key, delivery to on-call webhooks."""
