"""ExtractGuard: catch capability-extraction campaigns against an LLM API while they run."""

__version__ = "0.1.0"
