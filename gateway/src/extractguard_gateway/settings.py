"""The gateway side's settings, from EXTRACTGUARD_* environment variables.

Plain dataclasses read once, not pydantic-settings: this runs inside the gateway's environment,
which must not gain packages (or see its pydantic moved) for the sake of five variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from extractguard_gateway.adapters.base import AdapterSettings
from extractguard_gateway.addresses import AsnDatabase, trusted_networks
from extractguard_gateway.sender import EventSender, SenderSettings, Transport


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    ingest_url: str | None  # EXTRACTGUARD_INGEST_URL, e.g. http://extractguard-ingest:8480
    ingest_token: str  # EXTRACTGUARD_INGEST_TOKEN
    kafka_bootstrap_servers: str | None  # EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS (instead of the ingest)
    key_secret: bytes  # EXTRACTGUARD_KEY_SECRET: keys and end users are hashed with it
    trusted_proxies: str  # EXTRACTGUARD_TRUSTED_PROXIES: CIDRs of the operator's own proxies
    asn_database: Path | None  # EXTRACTGUARD_ASN_DATABASE: an IPtoASN TSV file
    spool_dir: Path | None  # EXTRACTGUARD_SPOOL_DIR: keep batches while the backend is down
    max_buffered_bytes: int  # EXTRACTGUARD_MAX_BUFFERED_BYTES

    @classmethod
    def from_env(cls) -> GatewaySettings:
        env = os.environ
        secret = env.get("EXTRACTGUARD_KEY_SECRET")
        if not secret:
            raise RuntimeError("EXTRACTGUARD_KEY_SECRET must be set: API keys and end users are hashed with it")
        return cls(
            ingest_url=env.get("EXTRACTGUARD_INGEST_URL"),
            ingest_token=env.get("EXTRACTGUARD_INGEST_TOKEN", ""),
            kafka_bootstrap_servers=env.get("EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS"),
            key_secret=secret.encode(),
            trusted_proxies=env.get("EXTRACTGUARD_TRUSTED_PROXIES", ""),
            asn_database=Path(env["EXTRACTGUARD_ASN_DATABASE"]) if env.get("EXTRACTGUARD_ASN_DATABASE") else None,
            spool_dir=Path(env["EXTRACTGUARD_SPOOL_DIR"]) if env.get("EXTRACTGUARD_SPOOL_DIR") else None,
            max_buffered_bytes=int(env.get("EXTRACTGUARD_MAX_BUFFERED_BYTES", str(16 * 1024 * 1024))),
        )

    def adapter_settings(self) -> AdapterSettings:
        return AdapterSettings(
            trusted_proxies=trusted_networks(self.trusted_proxies),
            asn_database=AsnDatabase(self.asn_database) if self.asn_database else None,
            extra={"key_secret": self.key_secret},
        )

    def transport(self) -> Transport:
        from extractguard_gateway.transports import HttpTransport, KafkaTransport

        if self.ingest_url:
            return HttpTransport(self.ingest_url, self.ingest_token)
        if self.kafka_bootstrap_servers:
            return KafkaTransport(self.kafka_bootstrap_servers)
        raise RuntimeError("set EXTRACTGUARD_INGEST_URL (HTTP ingest) or EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS")

    def sender(self) -> EventSender:
        return EventSender(
            self.transport(),
            self.key_secret,
            SenderSettings(max_buffered_bytes=self.max_buffered_bytes, spool_dir=self.spool_dir),
        )
