"""The README's "Connect your gateway" quotes the shipped example configs verbatim, the same files
the integration tests configure the gateways and receivers from."""

from __future__ import annotations

import pytest
import yaml

from extractguard.paths import project_root

EXAMPLES = project_root() / "gateway" / "examples"


@pytest.mark.parametrize("name", ["litellm.yaml", "otel-collector.yaml", "kong-http-log.yaml"])
def test_the_readme_quotes_each_example_as_shipped(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    assert yaml.safe_load(text)
    readme = (project_root() / "README.md").read_text()
    assert f"```yaml\n{text}```" in readme, f"README must quote gateway/examples/{name} as it is"


def test_the_litellm_example_names_the_shipped_callback() -> None:
    callbacks = yaml.safe_load((EXAMPLES / "litellm.yaml").read_text())["litellm_settings"]["callbacks"]
    assert callbacks == ["extractguard_gateway.litellm_callback.extractguard"]
    source = project_root() / "gateway" / "src" / "extractguard_gateway" / "litellm_callback.py"
    assert "\nextractguard = ExtractGuardLogger()\n" in source.read_text()
