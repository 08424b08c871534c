"""Verdicts on accounts, read from `account.labels`, and what the extraction detector learns from them.

`Verdicts` tails the compacted labels topic from its beginning in a background thread, keeping
the newest verdict of each account from the sources it trusts (by default analysts only:
simulation ground truth must not leak into an evaluation unless the experiment asks for it).
Every detection worker keeps its own copy — the topic is small and compacted — so whichever
worker holds an account can learn from its verdict.

`VerdictModel` is a River logistic regression over the behaviour tells. Each time an account
with a verdict is scored, the model learns from the tells it shows then; once it has seen enough
of both kinds, its probability is blended into the unsupervised score.

>>> model = VerdictModel(min_each=2)
>>> harvest = {"single_turn": 1.0, "output_heavy": 0.9, "logprobs": 0.2, "cot": 0.1, "young_account": 0.0,
...            "machine_pacing": 0.1}
>>> chat = {"single_turn": 0.4, "output_heavy": 0.0, "logprobs": 0.0, "cot": 0.0, "young_account": 0.0,
...         "machine_pacing": 0.0}
>>> for _ in range(200):
...     model.learn(harvest, True)
...     model.learn(chat, False)
>>> model.ready(), round(model.proba(harvest), 1), round(model.proba(chat), 1)
(True, 1.0, 0.1)
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import orjson
from confluent_kafka import Consumer, TopicPartition
from river import linear_model, optim

from extractguard.contracts.topics import ACCOUNT_LABELS
from extractguard.settings import KafkaSettings


class VerdictModel:
    def __init__(self, min_each: int = 20, learning_rate: float = 0.5) -> None:
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=0.0001)
        self.min_each = min_each
        self.learnt = {True: 0, False: 0}

    def learn(self, tells: dict[str, float], campaign: bool) -> None:
        self.model.learn_one(tells, campaign)
        self.learnt[campaign] += 1

    def ready(self) -> bool:
        return min(self.learnt.values()) >= self.min_each

    def proba(self, tells: dict[str, float]) -> float:
        return float(self.model.predict_proba_one(tells).get(True, 0.0))


class Verdicts:
    """The newest trusted verdict of each account: True = campaign member, False = benign."""

    def __init__(self, kafka: KafkaSettings, sources: Collection[str], group_id: str) -> None:
        self.kafka = kafka
        self.sources = frozenset(sources)
        self.group_id = group_id
        self.by_account: dict[str, bool] = {}
        self.read = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tail, name="verdicts", daemon=True)

    def get(self, account: str) -> bool | None:
        return self.by_account.get(account)

    def start(self) -> None:
        if self.sources:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def apply(self, raw: bytes) -> None:
        try:
            verdict = orjson.loads(raw)
            if verdict.get("source") in self.sources:
                self.by_account[str(verdict["account_id"])] = verdict["label"] == "campaign"
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            pass  # the lander keeps invalid labels in the DLQ; here they are simply not verdicts
        self.read += 1

    def _tail(self) -> None:
        consumer = Consumer({**self.kafka.client_config(), "group.id": self.group_id, "enable.auto.commit": False})
        try:
            metadata = consumer.list_topics(ACCOUNT_LABELS, timeout=10).topics[ACCOUNT_LABELS]
            consumer.assign([TopicPartition(ACCOUNT_LABELS, p, 0) for p in metadata.partitions])
            while not self._stop.is_set():
                for message in consumer.consume(1000, timeout=1.0):
                    if not message.error() and message.value():
                        self.apply(message.value() or b"")
        finally:
            consumer.close()
