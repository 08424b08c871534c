"""Offline checks of the Helm chart (helm/extractguard)."""
