"""Detection: event-time windows per entity, River-based detectors, explainable findings."""
