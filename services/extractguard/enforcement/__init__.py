"""Enforcement: a versioned policy turns campaigns and detections into graduated, expiring
decisions per account, API key, org or IP prefix (`book`), published to `enforcement.decisions`
for the bouncers (`service`). Actions are modules of `actions/`, found by name."""
