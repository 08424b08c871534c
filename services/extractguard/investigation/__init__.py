"""Investigation: what an on-call engineer reads after a page — campaigns, accounts, alerts and
decisions from ClickHouse, as tables, JSON, or a self-contained case page with plots."""
