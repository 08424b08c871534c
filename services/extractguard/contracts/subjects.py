"""Who a request is judged as: the account, or the end user behind it when the gateway says.

A reseller or router serves many unrelated end customers through one account (and one key). Judged
as one account, a third of its customers harvesting is a third of a mixture: faint, and an honest
reseller's traffic looks the same. When the gateway passes an end-user id (hashed at the gateway),
the unit of behaviour, linking and campaigns is the *subject* `<account>/eu:<end user>`: each end
customer is judged on its own requests, a campaign of them links like a campaign of accounts, and
the org they share is named as the one fronting them (`campaigns.linking`), so the reseller is
flagged through the campaign while its honest customers, judged apart, stay out of it.

The end-user id is what the caller claims. A campaign that rotates it per request only splits
itself into faint subjects behind one org, which is what a reseller whose downstream harvests
looks like: the linker's request-shape votes and the fronting org find that too.

>>> subject_of({"account_id": "acct-1", "end_user_id": None})
'acct-1'
>>> subject_of({"account_id": "acct-1", "end_user_id": "3fa9c0d2"})
'acct-1/eu:3fa9c0d2'
>>> account_of("acct-1/eu:3fa9c0d2"), end_user_of("acct-1/eu:3fa9c0d2"), end_user_of("acct-1")
('acct-1', '3fa9c0d2', None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

END_USER_MARK = "/eu:"


def subject_of(event: Mapping[str, Any]) -> str:
    """The unit an event is judged as: `account_id`, or `<account_id>/eu:<end_user_id>`."""
    end_user = event.get("end_user_id")
    account: str = event["account_id"]
    return f"{account}{END_USER_MARK}{end_user}" if end_user else account


def account_of(subject: str) -> str:
    """The account a subject's requests came through (the reseller's, for an end user)."""
    return subject.split(END_USER_MARK, 1)[0]


def end_user_of(subject: str) -> str | None:
    _account, mark, end_user = subject.partition(END_USER_MARK)
    return end_user if mark else None
