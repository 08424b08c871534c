"""A traffic simulator with known ground truth: organic accounts and one extraction campaign.

Deliberately small and replaceable: the labelled replay benchmark (`make eval`) supersedes it.
"""
