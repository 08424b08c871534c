"""The labelled replay benchmark: scenarios through the real pipeline, scored against ground truth."""
