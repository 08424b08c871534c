"""ClickHouse: the client (embedded chdb or a server, one API) and the numbered migrations."""
