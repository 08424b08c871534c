"""Deployment and operations tooling: the Helm chart check, the image lock, local Kafka."""
