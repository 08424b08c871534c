"""ExtractGuard at the gateway: sketch prompts, build validated events, send them without waiting.

Raw prompt text enters `sketch.sketch_prompt` (through `events.build_event`) and never leaves the
gateway process: only sketches, hashes and counts are sent.
"""
