"""The enforcer's loop: campaigns, detections and approvals in, decisions out.

Stages for each batch:
1. validate each record; a campaign or detection that does not validate is skipped with a warning
   (the lander, which lands those topics, dead-letters them); an approval that does not validate
   goes to `enforcement.approvals.dlq` (the enforcer is its only reader);
2. apply it to the decision book (the policy's ladder, the approval gate); expire decisions whose
   TTL ran out; reload the policy and the account facts when their files change (a policy that no
   longer validates is logged, file:line: field, and the one loaded before stays in force);
3. produce every changed decision to the compacted `enforcement.decisions` topic (keyed by target),
   wait for Kafka's acknowledgement, and only then commit the inputs' offsets.
At start the book is rebuilt from `enforcement.decisions`, so a restart neither forgets a decision
nor repeats the rungs already climbed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Message, Producer

from extractguard import metrics
from extractguard.contracts.dead_letters import DeadLetter
from extractguard.contracts.enforcement import (
    ENFORCEMENT_APPROVALS,
    ENFORCEMENT_DECISIONS,
    decision_key,
    valid_decision,
)
from extractguard.contracts.rejection import InvalidMessage, Reason
from extractguard.contracts.schemas import decode_json, validate
from extractguard.contracts.topics import CAMPAIGNS, DETECTIONS, dlq_name
from extractguard.enforcement.book import IN_FORCE, EnforcementBook
from extractguard.enforcement.facts import AccountFacts
from extractguard.enforcement.policy import SHIPPED_POLICY, Policy, PolicyError, load_policy
from extractguard.health import PollHealth, run_with_probes
from extractguard.kafka_offsets import read_since
from extractguard.kafka_ready import retry_retriable
from extractguard.logs import configure
from extractguard.settings import EnforcerSettings, KafkaSettings

SERVICE = "enforcer"
log = configure(SERVICE)


class PolicyFile:
    """The policy, reloaded when its file changes; a bad file at start stops the enforcer."""

    def __init__(self, path: Path | None) -> None:
        self.path = path or SHIPPED_POLICY
        self._stamp = self.path.stat().st_mtime
        self.policy = load_policy(self.path)

    def reload_if_changed(self) -> Policy | None:
        stamp = self.path.stat().st_mtime
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            self.policy = load_policy(self.path)
        except PolicyError as error:
            log.error("policy_invalid", error=str(error), kept=self.policy.revision)
            return None
        log.info("policy_reloaded", revision=self.policy.revision, rules=len(self.policy.rules))
        return self.policy


class Enforcer:
    def __init__(self, settings: EnforcerSettings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.kafka = kafka
        self.health = PollHealth(SERVICE, max_silence_s=settings.max_poll_silence_s)
        self.policy_file = PolicyFile(settings.policy_file)
        self.facts = AccountFacts(path=settings.account_facts_file)
        self.book = EnforcementBook(self.policy_file.policy, self.facts)
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                **settings.group_config(),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
        self._stop = threading.Event()
        self._refreshed_at = time.monotonic()
        self._expired_at = 0.0
        if settings.restore_book:
            restored = self.book.restore(self._readable(read_since(kafka, ENFORCEMENT_DECISIONS, {})))
            log.info("decision_book_rebuilt", decisions=restored, policy=self.book.policy.revision)

    def stop(self) -> None:
        self._stop.set()

    @staticmethod
    def _readable(values: list[bytes]) -> list[dict[str, Any]]:
        """The decisions of the topic that meet their schema; anything else is skipped, loudly (the
        lander dead-letters it): a foreign record must not stop the enforcer from starting."""
        readable = []
        for value in values:
            if not value:
                continue  # a tombstone
            try:
                readable.append(validate("enforcement_decision", decode_json(value)))
            except InvalidMessage as error:
                log.warning("invalid_decision_skipped", topic=ENFORCEMENT_DECISIONS, reason=str(error.code),
                            detail=error.detail)  # fmt: skip
        return readable

    def _handle(self, message: Message, now_ms: int) -> list[dict[str, Any]]:
        topic = message.topic() or ""
        raw = message.value() or b""
        payload = {CAMPAIGNS: "campaign", DETECTIONS: "detection", ENFORCEMENT_APPROVALS: "enforcement_approval"}[topic]
        try:
            document = validate(payload, decode_json(raw))
        except InvalidMessage as error:
            where = {"topic": topic, "partition": message.partition(), "offset": message.offset()}
            if topic == ENFORCEMENT_APPROVALS:
                dead = DeadLetter(raw, error, SERVICE, f"kafka:{topic}", topic, message.partition(), message.offset())
                self.producer.produce(dlq_name(topic), value=raw, headers=dead.headers())
                metrics.DLQ_MESSAGES.labels(dlq_name(topic), str(error.code)).inc()
            log.warning("invalid_input", **where, reason=str(error.code), detail=error.detail)
            return []
        if topic == CAMPAIGNS:
            return self.book.campaign(document, now_ms)
        if topic == DETECTIONS:
            return self.book.detection(document, now_ms)
        return self._person(document, message, raw, now_ms)

    def _person(self, document: dict[str, Any], message: Message, raw: bytes, now_ms: int) -> list[dict[str, Any]]:
        """A person's word: approve, reject or lift decisions (by id or group), or decide by hand."""
        verdict, by, note = document["verdict"], document["by"], document.get("note")
        if verdict == "decide":
            order = document["order"]
            try:
                changed = self.book.order(
                    order, by, now_ms, note, group_id=order.get("group_id"), ordered_at_ms=document["at_ms"]
                )
            except (KeyError, ValueError) as error:
                # Valid by its schema, refused by the registry (an action this enforcer lacks, its
                # parameters): kept in the DLQ with why, as an invalid record would be.
                topic = message.topic() or ENFORCEMENT_APPROVALS
                refused = InvalidMessage(Reason.SCHEMA_VIOLATION, f"order refused: {error}"[:500], "order")
                dead = DeadLetter(raw, refused, SERVICE, f"kafka:{topic}", topic, message.partition(), message.offset())
                self.producer.produce(dlq_name(topic), value=raw, headers=dead.headers())
                metrics.DLQ_MESSAGES.labels(dlq_name(topic), str(refused.code)).inc()
                log.warning("order_refused", topic=topic, partition=message.partition(), offset=message.offset(),
                            by=by, error=str(error)[:500])  # fmt: skip
                return []
            active = sum(d["status"] == "active" for d in changed)  # none: the order had lapsed
            log.info("manual_decision", by=by, action=order["action"], scope=order["scope"], decisions=active,
                     campaign=order.get("campaign_id"))  # fmt: skip
            return changed
        verbs = {"approve": self.book.approve, "reject": self.book.reject, "lift": self.book.lift}
        changed = verbs[verdict](document["ref"], by, now_ms, note)
        log.info("approval", ref=document["ref"], verdict=verdict, by=by, decisions=len(changed))
        return changed

    def _refresh(self, now_ms: int) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._refreshed_at >= self.settings.policy_reload_s:
            self._refreshed_at = now
            policy = self.policy_file.reload_if_changed()
            if policy is not None:
                self.book.policy = policy
            try:
                self.facts.reload_if_changed()
            except ValueError as error:
                log.error("account_facts_invalid", error=str(error))
        if now - self._expired_at < self.settings.expire_interval_s:
            return []
        self._expired_at = now
        in_force = Counter((d["action"], d["status"]) for d in self.book.decisions.values() if d["status"] in IN_FORCE)
        metrics.ENFORCEMENT_IN_FORCE.clear()
        for (action, status), count in in_force.items():
            metrics.ENFORCEMENT_IN_FORCE.labels(action, status).set(count)
        return self.book.expire_due(now_ms)

    def _publish(self, decisions: list[dict[str, Any]]) -> None:
        for decision in decisions:
            payload = valid_decision(decision)  # our own record: a failure here is a bug, and stops us
            self.producer.produce(ENFORCEMENT_DECISIONS, key=decision_key(payload), value=orjson.dumps(payload))
            metrics.ENFORCEMENT_DECISIONS.labels(payload["action"], payload["status"]).inc()
        if decisions:
            by = Counter((d["action"], d["status"]) for d in decisions)
            log.info("decisions", **{f"{a}_{s}": n for (a, s), n in by.items()})

    def run(self) -> None:
        self.consumer.subscribe([CAMPAIGNS, DETECTIONS, ENFORCEMENT_APPROVALS])
        try:
            while not self._stop.is_set():
                messages = self.consumer.consume(num_messages=500, timeout=0.5)
                self.health.beat()
                now_ms = int(time.time() * 1000)
                changed: list[dict[str, Any]] = []
                for message in messages:
                    if message.error():
                        log.warning("consume_error", error=str(message.error()))
                        continue
                    changed += self._handle(message, now_ms)
                changed += self._refresh(now_ms)
                self._publish(changed)
                if (changed or messages) and self.producer.flush(30):
                    raise RuntimeError("decisions not acknowledged by Kafka within 30 s")
                if messages:
                    # A broker restarting answers NOT_COORDINATOR for a while: wait it out.
                    retry_retriable(lambda: self.consumer.commit(asynchronous=False), "commit of evidence", 120)
        finally:
            self.producer.flush(30)
            self.consumer.close()


def run() -> None:
    enforcer = Enforcer(EnforcerSettings(), KafkaSettings())
    run_with_probes(enforcer, enforcer.health, enforcer.settings.web_host, enforcer.settings.web_port)
