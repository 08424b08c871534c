"""Run the lander: open ClickHouse, apply pending migrations, serve SQL, land until stopped."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from extractguard import gc_policy
from extractguard.health import PollHealth
from extractguard.lander.consumer import Lander, log
from extractguard.lander.sql_server import SqlServer
from extractguard.paths import data_home
from extractguard.settings import ClickHouseSettings, KafkaSettings, LanderSettings
from extractguard.storage import door, migrate
from extractguard.storage.client import connect, is_embedded


def run(apply_migrations: bool = True) -> None:
    gc_policy.for_streaming()  # a batch of 50,000 rows is millions of short-lived objects
    clickhouse = ClickHouseSettings()
    settings = LanderSettings()
    if is_embedded(clickhouse.dsn):
        # Before opening it: a reader starting now goes through our door, not into the database.
        door.announce(data_home(), clickhouse.dsn, settings.sql_host, settings.sql_port)
    client = connect(clickhouse.dsn)
    lock = threading.Lock()
    if apply_migrations:
        applied = migrate.apply(client, {"events_ttl_days": clickhouse.events_ttl_days}, clickhouse.cluster)
        if applied:
            log.info("migrations_applied", migrations=applied)
    health = PollHealth("lander", max_silence_s=settings.max_poll_silence_s)
    server = SqlServer(client, lock, settings.sql_host, settings.sql_port, health, settings)
    server.start()
    log.info(
        "sql_server_listening",
        host=settings.sql_host,
        port=settings.sql_port,
        embedded=is_embedded(clickhouse.dsn),
        token_required=settings.sql_token is not None,
    )
    run_dir = data_home() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    lander = Lander(client, lock, settings, KafkaSettings(), liveness_file=run_dir / "lander.alive", health=health)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        lander.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        lander.run()
    finally:
        server.stop()
        client.close()
        door.withdraw(data_home())
