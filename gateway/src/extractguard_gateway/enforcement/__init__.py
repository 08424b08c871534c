"""Enforcement at the gateway: the decisions ExtractGuard's enforcer publishes, held in a local
cache (warmed from the compacted `enforcement.decisions` topic, then followed), and the bouncers
that apply them to each request without a network call (the LiteLLM pre-call hook here; Envoy's
ext_authz and rate-limit services and CrowdSec live with the services)."""
