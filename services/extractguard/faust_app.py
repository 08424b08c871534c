"""The Faust application both Faust workers (detection, campaigns) run on: one configuration, the
Kafka connection settings in Faust's terms (so they reach a TLS or SASL cluster with the same
EXTRACTGUARD_KAFKA_* settings as the librdkafka clients), and the `/metrics` page.

>>> from extractguard.settings import KafkaSettings

#: The exit status of a worker stopped because nearly all its input was invalid.
EXIT_TOO_MANY_INVALID = 3
>>> broker_credentials(KafkaSettings(security_protocol="PLAINTEXT")) is None
True
>>> type(broker_credentials(KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
...                                       sasl_username="eg", sasl_password="secret"))).__name__
'SASLCredentials'
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TransportT
from faust.types.auth import CredentialsT
from prometheus_client import generate_latest

from extractguard import metrics
from extractguard.contracts.rejection import TooManyInvalid
from extractguard.paths import data_home
from extractguard.settings import KafkaSettings

#: The exit status of a worker stopped because nearly all its input was invalid.
EXIT_TOO_MANY_INVALID = 3


def broker_urls(kafka: KafkaSettings) -> list[str]:
    return [f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")]


def broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=kafka.ssl_ca_location) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, mechanism=kafka.sasl_mechanism, ssl_context=context
        )
    return faust.SSLCredentials(context)


class IdempotentProducer(aiokafka_driver.Producer):
    """Faust's aiokafka producer with idempotence, as every other producer here has: Faust turns it
    on only inside transactions, so a send retried after a leader change (a replicated cluster losing
    a broker) could otherwise be written twice."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class IdempotentTransport(aiokafka_driver.Transport):
    Producer = IdempotentProducer


class WorkerApp(faust.App):
    """A Faust app whose producers are idempotent (`IdempotentProducer`)."""

    def _new_transport(self) -> TransportT:
        return IdempotentTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> TransportT:
        return IdempotentTransport(self.conf.broker_producer, self)


def worker_app(
    app_id: str,
    kafka: KafkaSettings,
    *,
    web_port: int,
    web_bind: str,
    session_timeout_s: float,
    commit_interval_s: float,
    **options: Any,
) -> faust.App:
    """A Faust app whose agents acknowledge only what a checkpoint covers; `options` add to or
    override Faust settings for one worker."""
    app = WorkerApp(
        app_id,
        broker=broker_urls(kafka),
        broker_credentials=broker_credentials(kafka),
        store="memory://",
        datadir=str(data_home() / "faust"),  # not the working directory
        topic_allow_declare=True,
        value_serializer="raw",
        web_port=web_port,
        web_bind=web_bind,
        web_in_thread=False,
        producer_max_request_size=8 * 1024 * 1024,  # fingerprint shares and evidence of a busy window
        producer_acks=-1,
        # No `<app id>-__assignor-__leader` topic: no agent here asks who leads, and Faust would
        # create it with one replica, a partition that a replicated cluster loses with its broker.
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout_s,
        broker_commit_interval=commit_interval_s,
        # Inputs stay unacknowledged until a checkpoint covers them; a rebalance must not wait for
        # them (the next owner resumes from the checkpoint).
        stream_wait_empty=False,
        broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
        **options,
    )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=metrics.EXPOSITION_CONTENT_TYPE)

    return app


async def stop_on_too_many_invalid(step: Awaitable[None], log: Any) -> None:
    """Run one step of an agent; when the invalid-rate guard trips, end the process at once.

    A Faust agent that raises is restarted by its supervisor, which would reset the guard and go on
    routing everything to the DLQ: the opposite of stopping. Ending the process is safe where it
    is used, because nothing past the last checkpoint is acknowledged (the same as a SIGKILL,
    which the recovery tests cover); the orchestrator shows the crash and restarts it.
    """
    try:
        await step
    except TooManyInvalid as error:
        log.critical("too_many_invalid", error=str(error), exit_status=EXIT_TOO_MANY_INVALID)
        os._exit(EXIT_TOO_MANY_INVALID)
