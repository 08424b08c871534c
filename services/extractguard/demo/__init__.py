"""`make demo`: the whole pipeline on one machine, a simulated campaign, and a report."""
