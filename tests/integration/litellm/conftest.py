"""The proxy's own modules are imported by the LiteLLM proxy (its environment), never by pytest."""

collect_ignore = ["custom_auth.py"]
