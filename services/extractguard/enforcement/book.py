"""The decision book: the policy applied to campaigns and detections, one decision per target.

Pure and clocked by its caller (`now_ms`): the enforcer service passes the wall clock, the
evaluation replay the scenario's event time. Every change it makes is returned as a decision
record (`enforcement_decision` v1) to publish; the newest record of each target is the book's
state, so `restore` rebuilds it from the compacted topic.

A decision's life: `active` (its action enforced) or `pending_approval` (waiting for a person,
enforcing nothing) -> `expired` at its TTL, `rejected` by a person, or replaced by the next rung
(`superseded`, the new decision naming the one it supersedes). Approval makes a pending decision
active from then, for its rung's TTL. An escalation that waits for a person keeps the rung it
would replace in force (its effect, until that rung's expiry): asking for a suspension does not
lift a throttle. Rejecting it lifts both: a person who doubts the evidence stops its enforcement.

A person may also decide by hand (`order`: rule `manual`, evidence source `manual`, approved by its
maker) and lift any decision in force (`lift`: status `lifted`, with who, when and why). A manual
decision stands against the policy until it expires or is lifted; a lifted target is left alone by
every rule until the lifted decision would have expired.

>>> from extractguard.enforcement.policy import shipped_policy
>>> book = EnforcementBook(shipped_policy())
>>> campaign = {"campaign_id": "cmp-000000000001", "status": "growing", "score": 40.0, "members": ["a", "b",
...     "c", "d", "e"], "members_total": 5, "shaped_members": 5, "fingerprints": [], "updated_ms": 0}
>>> [d["action"] for d in book.campaign(campaign, now_ms=0)][:2]
['observe', 'observe']
>>> [d["action"] for d in book.campaign(campaign, now_ms=60_000)]  # too soon to escalate
[]
>>> sorted({(d["action"], d["status"]) for d in book.campaign(campaign, now_ms=6 * 60_000)})
[('observe', 'superseded'), ('protect_reasoning', 'active')]
>>> sorted({(d["action"], d["status"]) for d in book.campaign(campaign, now_ms=17 * 60_000)})
[('protect_reasoning', 'superseded'), ('throttle', 'active')]
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from extractguard.enforcement.actions import Binding
from extractguard.enforcement.facts import AccountFacts
from extractguard.enforcement.policy import Policy, Rule
from extractguard_gateway.enforcement.decisions import target_key

IN_FORCE = frozenset({"active", "pending_approval"})
#: The rule name of decisions a person made by hand.
MANUAL = "manual"
SCHEMA_VERSION = 1
#: Evidence fields a decision keeps (the audit trail), capped so a record stays small.
_FINGERPRINTS_KEPT = 5


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence as the book weighs it, whatever its source."""

    source: str  # campaign | detection
    evidence_id: str
    score: float
    accounts_total: int
    summary: str
    details: dict[str, Any]
    targets: list[tuple[str, str]]  # (scope, entity), in the order decided


def _group_id(rule: str, evidence_id: str, level: int, now_ms: int) -> str:
    """The decisions one piece of evidence made at one rung at one time (approved together)."""
    return "grp-" + hashlib.blake2b(f"{rule}|{evidence_id}|{level}|{now_ms}".encode(), digest_size=6).hexdigest()


class EnforcementBook:
    def __init__(self, policy: Policy, facts: AccountFacts | None = None) -> None:
        self.policy = policy
        self.facts = facts or AccountFacts()
        self.decisions: dict[str, dict[str, Any]] = {}  # target key -> newest decision record
        # Per (rule, evidence id): the highest rung enforced, and the rungs a person approved. The
        # campaign climbs the ladder, not each account: a member that joins a campaign already
        # throttled starts throttled, under the approval its campaign already has.
        self.climbed: dict[tuple[str, str], tuple[int, int]] = {}  # -> (rung, when it was last decided)
        self.approved: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}  # -> rung -> its approval

    # -- evidence in ------------------------------------------------------------------------
    def campaign(self, record: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Decisions a campaign record (campaign v1) makes or escalates."""
        for rule in self.policy.rules:
            if rule.when.matches_campaign(record):
                return self._decide(rule, self._campaign_evidence(rule, record), now_ms)
        return []

    def detection(self, detection: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Decisions a detection (detection v1) makes or escalates. Campaign detections are the
        resolver's restatement of a campaign record, which `campaign` weighs: they are skipped."""
        if detection["entity_kind"] == "campaign":
            return []
        for rule in self.policy.rules:
            if rule.when.matches_detection(detection):
                return self._decide(rule, self._detection_evidence(rule, detection), now_ms)
        return []

    def _campaign_evidence(self, rule: Rule, record: dict[str, Any]) -> Evidence:
        members: list[str] = record["members"]
        total = int(record.get("members_total", len(members)))
        targets: list[tuple[str, str]] = []
        if "account" in rule.targets:
            targets += [("account", m) for m in members]
        if "ip_prefix" in rule.targets:
            for fingerprint in record["fingerprints"]:
                kind, _, value = str(fingerprint["fingerprint"]).partition(":")
                needed = max(rule.min_prefix_sharers, rule.min_prefix_share * max(total, 1))
                if kind == "ip_prefix" and fingerprint["sharers"] >= needed:
                    targets.append(("ip_prefix", value))
        shaped = round(int(record.get("shaped_members", 0)) / total, 4) if total else 0.0
        details = {
            "campaign_id": record["campaign_id"], "campaign_status": record["status"], "members_total": total,
            "shaped_share": shaped,
            "fingerprints": [f["fingerprint"] for f in record["fingerprints"][:_FINGERPRINTS_KEPT]],
        }  # fmt: skip
        summary = (f"campaign {record['campaign_id']} ({record['status']}): {total} accounts, {shaped:.0%} "
                   f"extraction-shaped, score {float(record['score']):.1f}")  # fmt: skip
        return Evidence("campaign", record["campaign_id"], float(record["score"]), total, summary, details, targets)

    def _detection_evidence(self, rule: Rule, detection: dict[str, Any]) -> Evidence:
        evidence = detection["evidence"]
        accounts: list[str] = evidence["accounts"]
        targets: list[tuple[str, str]] = []
        if "entity" in rule.targets and detection["entity_kind"] in ("account", "api_key", "org", "ip_prefix"):
            targets.append((detection["entity_kind"], detection["entity"]))
        if "account" in rule.targets:
            targets += [("account", a) for a in accounts]
        details = {
            "detection_id": detection["detection_id"], "detector": detection["detector"],
            "entity_kind": detection["entity_kind"], "entity": detection["entity"],
            "threshold": float(detection["threshold"]), "severity": detection["severity"],
            "expected_false_alarms_per_day": evidence.get("expected_false_alarms_per_day"),
            "members_total": int(evidence.get("accounts_total", len(accounts))),
        }  # fmt: skip
        return Evidence(
            "detection", detection["detection_id"], float(detection["score"]),
            int(evidence.get("accounts_total", len(accounts))), str(evidence["summary"])[:512], details, targets,
        )  # fmt: skip

    # -- the ladder -------------------------------------------------------------------------
    def _decide(self, rule: Rule, evidence: Evidence, now_ms: int) -> list[dict[str, Any]]:
        changed: list[dict[str, Any]] = []
        for scope, entity in evidence.targets[: rule.max_targets]:
            if scope == "account" and not self._young_enough(rule, entity, now_ms):
                continue
            level = self._level_for(rule, target_key(scope, entity), now_ms, evidence.evidence_id)
            if level is not None:
                changed += self._new_decision(rule, level, scope, entity, evidence, now_ms)
        return changed

    def _young_enough(self, rule: Rule, account: str, now_ms: int) -> bool:
        if rule.when.max_account_age_days is None:
            return True
        fact = self.facts.get(account)
        age = None if fact is None else fact.age_days(now_ms)
        return age is None or age <= rule.when.max_account_age_days

    def _level_for(self, rule: Rule, key: str, now_ms: int, evidence_id: str) -> int | None:
        """The rung a target matched now goes to, or None when its decision stands: the rung its
        own ladder reaches, or the rung its evidence (its campaign) reached, if higher."""
        floor, since_ms = self.climbed.get((rule.name, evidence_id), (0, now_ms))
        floor = min(floor, len(rule.ladder) - 1)  # a reloaded policy may have a shorter ladder
        if now_ms - since_ms > (rule.ladder[floor].ttl + rule.remember) * 1000:
            floor = 0  # the campaign's climb is history: its members start over
        held = self.decisions.get(key)
        if held is not None and held["rule"] == rule.name and held["level"] < floor and held["status"] == "active":
            return floor  # behind its campaign: catch up
        own = self._own_level(rule, held, now_ms, floor)
        return None if own is None else max(own, floor)

    def _own_level(self, rule: Rule, held: dict[str, Any] | None, now_ms: int, floor: int = 0) -> int | None:
        top = len(rule.ladder) - 1
        if held is None:
            return 0
        in_force = held["status"] in IN_FORCE and now_ms < held["expires_at_ms"]
        if held["status"] == "lifted" and now_ms < held["expires_at_ms"]:
            return None  # a person lifted it: no rule puts it back before it would have lapsed
        if held["rule"] == MANUAL and in_force:
            return None  # a person's decision stands against the policy until it expires or is lifted
        if held["rule"] != rule.name:
            if in_force:
                # Another rule's decision stands unless the rung this rule's evidence has reached is
                # stronger; a campaign's rule also takes over an account's lone-harvester decision at
                # equal strength, so the campaign climbs its ladder as one (and its approval gate
                # applies) whichever evidence came first.
                mine, theirs = self._strength(rule.ladder[floor].action), self._strength(held["action"])
                outranks = rule.when.source == "campaign" and held["evidence"]["source"] == "detection"
                return 0 if mine > theirs or (outranks and mine >= theirs) else None
            return 0
        if held["status"] == "rejected" and now_ms < held["expires_at_ms"]:
            return None  # a person said no for this long
        if in_force:
            if held["status"] != "active" or held["level"] >= top:
                return None  # waiting for a person, or at the top already
            escalate_after = rule.ladder[held["level"]].escalate_after
            if escalate_after is None or now_ms - held["decided_at_ms"] < escalate_after * 1000:
                return None
            return int(held["level"]) + 1
        if now_ms - held["expires_at_ms"] <= rule.remember * 1000 and held["status"] in ("expired", "superseded"):
            return min(int(held["level"]) + 1, top)  # a repeat offender starts a rung up
        return 0

    @staticmethod
    def _strength(name: str) -> int:
        from extractguard.enforcement.actions import action

        return action(name).strength

    def _approval_needed(
        self, rule: Rule, level: int, evidence: Evidence, scope: str, entity: str, now_ms: int
    ) -> str | None:
        gate = self.policy.approval
        covered = level in self.approved.get((rule.name, evidence.evidence_id), {})
        if evidence.accounts_total >= gate.min_accounts and not covered:
            return f"the evidence names {evidence.accounts_total} accounts (>= {gate.min_accounts})"
        if scope == "account" and gate.long_standing is not None:
            fact = self.facts.get(entity)
            age = None if fact is None else fact.age_days(now_ms)
            spend = None if fact is None else fact.monthly_spend_usd
            if age is not None and spend is not None:
                long = gate.long_standing
                if age >= long.min_account_age_days and spend >= long.min_monthly_spend_usd:
                    return f"a long-standing paying account ({age:.0f} days, ${spend:,.0f}/month)"
        return None

    def _new_decision(
        self, rule: Rule, level: int, scope: str, entity: str, evidence: Evidence, now_ms: int
    ) -> list[dict[str, Any]]:
        """The new decision, after the one it supersedes republished as `superseded` (the audit
        trail shows when each stopped)."""
        rung = rule.ladder[level]
        implementation = rung.implementation()
        bound = rung.validated_params()
        if implementation.binds:
            in_force = [
                d for d in self.decisions.values()
                if d["action"] == rung.action and d["status"] in IN_FORCE and now_ms < d["expires_at_ms"]
            ]  # fmt: skip
            bound = implementation.bind(bound, Binding(scope, entity, evidence.evidence_id, now_ms, in_force))
        params = bound.model_dump(mode="json")
        key = target_key(scope, entity)
        held = self.decisions.get(key)  # an escalation waiting for a person keeps its effect
        why_approval = (
            self._approval_needed(rule, level, evidence, scope, entity, now_ms)
            if implementation.needs_approval
            else None
        )
        details = dict(evidence.details)
        if scope == "account":
            fact = self.facts.get(entity)
            if fact is not None:
                details["account_age_days"] = fact.age_days(now_ms)
                details["monthly_spend_usd"] = fact.monthly_spend_usd
        status = "pending_approval" if why_approval else "active"
        ttl_ms = int((self.policy.approval.pending_ttl if why_approval else rung.ttl) * 1000)
        effect = implementation.effect(bound) if status == "active" else {"kind": "none"}
        expires_at_ms = now_ms + ttl_ms
        if why_approval and self._escalating(rule, held, level, now_ms):
            # Asking for a stronger rung must not lift the one in force: while a person decides, the
            # pending record enforces the rung it would replace, and lapses when that would have.
            assert held is not None
            effect = held["effect"]
            expires_at_ms = min(expires_at_ms, int(held["expires_at_ms"]))
            why_approval = f"{why_approval}; {held['action']} stays in force meanwhile"[:256]
        decision = {
            "schema_version": SCHEMA_VERSION,
            "decision_id": f"dec-{secrets.token_hex(8)}",
            "group_id": _group_id(rule.name, evidence.evidence_id, level, now_ms),
            "scope": scope,
            "entity": entity,
            "action": rung.action,
            "params": params,
            "status": status,
            "effect": effect,
            "level": level,
            "policy": {"name": self.policy.name, "revision": self.policy.revision},
            "rule": rule.name,
            "reason": f"{rule.name} rung {level + 1}/{len(rule.ladder)} ({rung.action}): {evidence.summary}"[:1024],
            "evidence": {"source": evidence.source, "score": evidence.score, **details},
            "approval": self._approval_of(rule, level, evidence, why_approval),
            "decided_at_ms": now_ms,
            "expires_at_ms": expires_at_ms,
            "updated_at_ms": now_ms,
            "supersedes": None,
        }
        records = self._replace(key, decision, now_ms)
        self._climbed(decision)
        return records

    def _replace(self, key: str, decision: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Make `decision` the target's, after the one in force it supersedes (republished as
        `superseded`: the audit trail shows when each stopped)."""
        held = self.decisions.get(key)
        records = []
        if held is not None and held["status"] in IN_FORCE and now_ms < held["expires_at_ms"]:
            decision["supersedes"] = held["decision_id"]
            records.append({**held, "status": "superseded", "effect": {"kind": "none"},
                            "updated_at_ms": max(now_ms, held["updated_at_ms"] + 1) - 1})  # fmt: skip
            decision["updated_at_ms"] = max(now_ms, held["updated_at_ms"] + 1)
        self.decisions[key] = decision
        records.append(decision)
        return records

    @staticmethod
    def _escalating(rule: Rule, held: dict[str, Any] | None, level: int, now_ms: int) -> bool:
        """Whether `held` is this rule's lower rung, active now (the one an escalation replaces)."""
        return (
            held is not None and held["rule"] == rule.name and held["status"] == "active"
            and int(held["level"]) < level and now_ms < int(held["expires_at_ms"])
        )  # fmt: skip

    def _approval_of(self, rule: Rule, level: int, evidence: Evidence, why: str | None) -> dict[str, Any]:
        """The approval record: needed (why), or given already to this rung of the evidence."""
        given = self.approved.get((rule.name, evidence.evidence_id), {}).get(level)
        if why is None and given is not None and evidence.accounts_total >= self.policy.approval.min_accounts:
            return {**given, "reason": f"covered by the approval of {evidence.evidence_id} at this rung"[:256]}
        return {"required": why is not None, "reason": why, "by": None, "at_ms": None, "note": None}

    @staticmethod
    def _evidence_id(decision: dict[str, Any]) -> str:
        evidence = decision["evidence"]
        return str(evidence.get("campaign_id") or evidence.get("detection_id") or "")

    def _climbed(self, decision: dict[str, Any]) -> None:
        """Remember the rung a decision's evidence reached (and whether a person approved it)."""
        if decision["status"] != "active":
            return
        key = (decision["rule"], self._evidence_id(decision))
        level, _since = self.climbed.get(key, (0, 0))
        if int(decision["level"]) >= level:
            self.climbed[key] = (int(decision["level"]), int(decision["decided_at_ms"]))
        if decision["approval"].get("by"):
            self.approved.setdefault(key, {}).setdefault(int(decision["level"]), decision["approval"])

    # -- time and people --------------------------------------------------------------------
    def expire_due(self, now_ms: int) -> list[dict[str, Any]]:
        """Decisions whose TTL ran out, republished as `expired` (bouncers stop at the expiry
        time on their own; the record is for the audit trail and the compacted topic)."""
        expired = []
        for key, held in self.decisions.items():
            if held["status"] in IN_FORCE and now_ms >= held["expires_at_ms"]:
                self.decisions[key] = updated = {**held, "status": "expired", "effect": {"kind": "none"},
                                                 "updated_at_ms": max(now_ms, held["updated_at_ms"] + 1)}  # fmt: skip
                expired.append(updated)
        return expired

    def pending(self, ref: str | None = None) -> list[dict[str, Any]]:
        return [
            d for d in self.decisions.values()
            if d["status"] == "pending_approval" and (ref is None or ref in (d["decision_id"], d["group_id"]))
        ]  # fmt: skip

    def approve(self, ref: str, by: str, now_ms: int, note: str | None = None) -> list[dict[str, Any]]:
        """Make the pending decisions of `ref` (a decision id or a group id) active from now."""
        from extractguard.enforcement.actions import action

        approved = []
        for held in self.pending(ref):
            rule = next((r for r in self.policy.rules if r.name == held["rule"]), None)
            ttl_s = rule.ladder[held["level"]].ttl if rule and held["level"] < len(rule.ladder) else 3600.0
            implementation = action(held["action"])
            updated = {
                **held, "status": "active", "effect": implementation.effect(implementation.params(held["params"])),
                "approval": {**held["approval"], "by": by, "at_ms": now_ms, "note": note},
                "expires_at_ms": now_ms + int(ttl_s * 1000), "updated_at_ms": max(now_ms, held["updated_at_ms"] + 1),
            }  # fmt: skip
            self.decisions[target_key(held["scope"], held["entity"])] = updated
            self._climbed(updated)
            approved.append(updated)
        return approved

    def reject(self, ref: str, by: str, now_ms: int, note: str | None = None) -> list[dict[str, Any]]:
        """Refuse the pending decisions of `ref`; the rule leaves their targets alone until they
        would have lapsed."""
        rejected = []
        for held in self.pending(ref):
            updated = {**held, "status": "rejected", "effect": {"kind": "none"},
                       "approval": {**held["approval"], "by": by, "at_ms": now_ms, "note": note},
                       "updated_at_ms": max(now_ms, held["updated_at_ms"] + 1)}  # fmt: skip
            self.decisions[target_key(held["scope"], held["entity"])] = updated
            rejected.append(updated)
        return rejected

    def order(
        self,
        order: dict[str, Any],
        by: str,
        now_ms: int,
        note: str | None = None,
        group_id: str | None = None,
        ordered_at_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions a person made by hand (the `order` of an enforcement_approval v2 `decide`):
        active at once, one per entity, replacing whatever is in force on each, until the TTL counted
        from when it was ordered: an order read again later (a new consumer group replaying the
        topic) never enforces past its time, and one already past it decides nothing.

        Raises KeyError for an action nobody registered, ValueError for parameters it refuses.
        """
        from extractguard.enforcement.actions import action

        expires_at_ms = (now_ms if ordered_at_ms is None else ordered_at_ms) + int(float(order["ttl_s"]) * 1000)
        if expires_at_ms <= now_ms:
            return []
        implementation = action(order["action"])
        raw = implementation.params(order.get("params") or {})
        campaign_id = order.get("campaign_id")
        group = order.get("group_id") or group_id or _group_id(MANUAL, by, 0, now_ms)
        evidence: dict[str, Any] = {"source": MANUAL, "score": 0.0}
        if campaign_id:
            evidence["campaign_id"] = campaign_id
        what = f"{order['action']} by hand, by {by}" + (f" (campaign {campaign_id})" if campaign_id else "")
        records: list[dict[str, Any]] = []
        for entity in order["entities"]:
            bound = raw
            if implementation.binds:
                in_force = [
                    d for d in self.decisions.values()
                    if d["action"] == order["action"] and d["status"] in IN_FORCE and now_ms < d["expires_at_ms"]
                ]  # fmt: skip
                bound = implementation.bind(
                    raw, Binding(order["scope"], entity, campaign_id or group, now_ms, in_force)
                )
            decision = {
                "schema_version": SCHEMA_VERSION, "decision_id": f"dec-{secrets.token_hex(8)}", "group_id": group,
                "scope": order["scope"], "entity": entity, "action": order["action"],
                "params": bound.model_dump(mode="json"), "status": "active", "effect": implementation.effect(bound),
                "level": 0, "policy": {"name": self.policy.name, "revision": self.policy.revision}, "rule": MANUAL,
                "reason": f"{what}: {note or 'no note given'}"[:1024], "evidence": evidence,
                "approval": {"required": False, "reason": "decided by hand", "by": by, "at_ms": now_ms, "note": note},
                "decided_at_ms": now_ms, "expires_at_ms": expires_at_ms,
                "updated_at_ms": now_ms, "supersedes": None,
            }  # fmt: skip
            records += self._replace(target_key(order["scope"], entity), decision, now_ms)
        return records

    def lift(self, ref: str, by: str, now_ms: int, note: str | None = None) -> list[dict[str, Any]]:
        """End the decisions of `ref` (a decision id or a group id) in force now, whoever made them."""
        lifted = []
        for key, held in self.decisions.items():
            if ref not in (held["decision_id"], held["group_id"]):
                continue
            if held["status"] not in IN_FORCE or now_ms >= held["expires_at_ms"]:
                continue
            self.decisions[key] = updated = {
                **held, "status": "lifted", "effect": {"kind": "none"},
                "lifted": {"by": by, "at_ms": now_ms, "note": note},
                "reason": f"lifted by {by}: {note or 'no note given'}; was: {held['reason']}"[:1024],
                "updated_at_ms": max(now_ms, held["updated_at_ms"] + 1),
            }  # fmt: skip
            lifted.append(updated)
        return lifted

    def restore(self, records: Iterable[dict[str, Any]]) -> int:
        """Rebuild from the decisions topic (newest record of each target wins)."""
        count = 0
        for record in records:
            key = target_key(record["scope"], record["entity"])
            held = self.decisions.get(key)
            if held is None or held["updated_at_ms"] <= record["updated_at_ms"]:
                self.decisions[key] = record
                self._climbed(record)
                count += 1
        return count
