"""Topic contracts: declarations, JSON Schemas, the batch envelope and the dead-letter queue."""
