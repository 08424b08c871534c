"""Faust's view of the Kafka connection settings, so the Faust workers reach a TLS or SASL cluster
with the same EXTRACTGUARD_KAFKA_* settings as the librdkafka clients.

>>> from extractguard.settings import KafkaSettings
>>> broker_credentials(KafkaSettings(security_protocol="PLAINTEXT")) is None
True
>>> type(broker_credentials(KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
...                                       sasl_username="eg", sasl_password="secret"))).__name__
'SASLCredentials'
"""

from __future__ import annotations

import ssl

import faust
from faust.types.auth import CredentialsT

from extractguard.settings import KafkaSettings


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
