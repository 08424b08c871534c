"""The gateway side as the backend uses it: events and sketches (from the `extractguard-gateway`
distribution), publishing to Kafka in envelopes, partitioning.

Raw prompt text enters `sketch.sketch_prompt` and `events.build_event` and never leaves them.
"""
