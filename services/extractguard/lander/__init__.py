"""The lander: Kafka topics into ClickHouse, exactly once in effect."""
