"""Doctest collection of the gateway distribution: the LiteLLM callback module needs the LiteLLM
proxy installed and configured (tests/integration/test_litellm_proxy.py runs it there)."""

import importlib.util

collect_ignore = (
    []
    if importlib.util.find_spec("litellm")
    else ["extractguard_gateway/litellm_callback.py", "extractguard_gateway/litellm_enforcer.py"]
)
