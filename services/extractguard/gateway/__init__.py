"""The gateway side: sketch prompts locally, build events, publish them to Kafka.

Raw prompt text enters `sketch.sketch_prompt` and `events.build_event` and never leaves them.
"""
