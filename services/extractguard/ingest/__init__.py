"""HTTP ingest: for gateways that would rather POST batches of events than run the Kafka SDK."""
