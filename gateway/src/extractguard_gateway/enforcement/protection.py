"""What `protect_reasoning` does to a response, for every enforcement point that can rewrite one.

A suspected harvester under `protect_reasoning` keeps getting answers, but not what a distiller
learns most from: the model's reasoning and its token probabilities. The enforcer renders the
action as an `annotate` effect whose annotations are the contract (so a bouncer that predates the
action admits the request unchanged rather than refusing it):

- `protect_reasoning`: `withhold` (the reasoning is removed) or `summary` (replaced by the fixed
  text of `protect_reasoning_summary`);
- `protect_logprobs`: `drop` (each choice's `logprobs` becomes null) or `keep`.

An enforcement point that sees `protect_reasoning` on a request, once the response is back and
before it reaches the client, removes from each choice of an OpenAI-shaped chat completion:

- the reasoning fields of the message (`reasoning_content`, `reasoning`, `thinking_blocks`, and the
  same under `provider_specific_fields`);
- every `<think>…</think>` block of `content` (and an unterminated one: a trace cut by `length`);
- when the request asked for step-by-step reasoning (`cot_requested`), the worked steps before the
  content's last final-answer marker (`Answer:`, `Final answer:`), when it has one: without a
  marker the answer cannot be told from the steps and the content is served as it is;
- `logprobs` (under `protect_logprobs: drop`).

The final answer and the usage are served unchanged. It records what it withheld (`Withheld`) for
the request's gateway event (`protected`, `reasoning_withheld_tokens`, `logprobs_withheld`): the
response's own reasoning token count where the provider gives one, else about four characters a
token of the withheld text. `StreamProtector` does the same chunk by chunk for a streamed answer.

>>> response = {"choices": [{"index": 0, "logprobs": {"content": []}, "message": {"role": "assistant",
...     "content": "<think>7 times 6: 6+6+6+6+6+6+6 = 42</think>42", "reasoning_content": "Multiply."}}]}
>>> withheld = protect(response, Protection())
>>> response["choices"][0]["message"]["content"], response["choices"][0]["logprobs"]
('42', None)
>>> "reasoning_content" in response["choices"][0]["message"], withheld.reasoning_tokens, withheld.logprobs
(False, 10, True)
>>> Protection.from_annotations({"watermark_pool": "canary-00"}) is None
True
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

#: The annotations of the `protect_reasoning` action's effect (the contract above).
ANNOTATION = "protect_reasoning"
SUMMARY_ANNOTATION = "protect_reasoning_summary"
LOGPROBS_ANNOTATION = "protect_logprobs"
DEFAULT_SUMMARY = "[reasoning withheld]"
#: Message fields that carry reasoning, by the names providers and LiteLLM give them.
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking_blocks")
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text, where no count is given

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)\s*", re.DOTALL | re.IGNORECASE)
#: The last final-answer marker of a worked answer, on a line of its own start.
_FINAL = re.compile(r"(?:^|\n)[ \t*#]*(?:final answer|answer)[ \t*]*:", re.IGNORECASE)

Mode = Literal["withhold", "summary"]


@dataclass(frozen=True, slots=True)
class Protection:
    """How one request's response is protected (from the decision's annotations)."""

    mode: Mode = "withhold"
    summary: str = DEFAULT_SUMMARY
    drop_logprobs: bool = True

    @classmethod
    def from_annotations(cls, annotations: dict[str, str] | None) -> Protection | None:
        """The protection the annotations ask for, None when they ask for none. An unknown mode is
        read as `withhold`: a newer enforcer's stricter mode must not serve the reasoning."""
        if not annotations or ANNOTATION not in annotations:
            return None
        mode: Mode = "summary" if annotations[ANNOTATION] == "summary" else "withhold"
        summary = annotations.get(SUMMARY_ANNOTATION) or DEFAULT_SUMMARY
        return cls(mode, summary, annotations.get(LOGPROBS_ANNOTATION, "drop") != "keep")


@dataclass(slots=True)
class Withheld:
    """What protection took out of one response."""

    reasoning_tokens: int = 0
    logprobs: bool = False

    def add(self, other: Withheld) -> None:
        self.reasoning_tokens += other.reasoning_tokens
        self.logprobs = self.logprobs or other.logprobs


def estimated_tokens(text: str) -> int:
    """
    >>> estimated_tokens(""), estimated_tokens("abcde")
    (0, 2)
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _get(thing: Any, name: str) -> Any:
    if isinstance(thing, MutableMapping):
        return thing.get(name)
    return getattr(thing, name, None)


def _set(thing: Any, name: str, value: Any) -> None:
    if isinstance(thing, MutableMapping):
        thing[name] = value
    else:
        setattr(thing, name, value)


def _remove(thing: Any, name: str) -> None:
    if isinstance(thing, MutableMapping):
        thing.pop(name, None)
    elif hasattr(thing, name):
        try:
            delattr(thing, name)
        except AttributeError:  # a declared field of a model object: emptied instead
            setattr(thing, name, None)


def _text_of(value: Any) -> str:
    """The text of a reasoning field (a string, or thinking blocks carrying `thinking`/`text`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text_of(_get(block, "thinking") or _get(block, "text") or "") for block in value)
    return ""


def split_reasoning(content: str, cot_requested: bool = False) -> tuple[str, str]:
    """(the content served, the reasoning taken out of it).

    >>> split_reasoning("<think>carry the one</think>The sum is 12.")
    ('The sum is 12.', 'carry the one')
    >>> split_reasoning("3 apples + 4 apples = 7 apples.\\nAnswer: 7", cot_requested=True)
    ('Answer: 7', '3 apples + 4 apples = 7 apples.')
    >>> split_reasoning("3 + 4 = 7, so 7.", cot_requested=True)  # no marker: nothing to tell apart
    ('3 + 4 = 7, so 7.', '')
    """
    taken = [m.group(0) for m in _THINK.finditer(content)]
    served = _THINK.sub("", content)
    reasoning = "".join(re.sub(r"</?think>", "", t, flags=re.IGNORECASE).strip() for t in taken)
    if cot_requested:
        markers = list(_FINAL.finditer(served))
        if markers and markers[-1].start() > 0:
            cut = markers[-1].start()
            reasoning += served[:cut].strip()
            served = served[cut:].lstrip("\n")
    return served, reasoning


def _reported_reasoning_tokens(response: Any) -> int:
    usage = _get(response, "usage")
    details = _get(usage, "completion_tokens_details") if usage is not None else None
    reported = _get(details, "reasoning_tokens") if details is not None else None
    return reported if isinstance(reported, int) and reported > 0 else 0


def reasoning_tokens(response: Any, cot_requested: bool = False) -> int:
    """What a response's reasoning amounts to, in tokens, whether or not it has been protected yet:
    the provider's count where it gives one, else estimated from the reasoning text it still holds.

    >>> reasoning_tokens({"choices": [{"message": {"content": "<think>abcdefgh</think>ok"}}]})
    2
    >>> reasoning_tokens({"usage": {"completion_tokens_details": {"reasoning_tokens": 310}}, "choices": []})
    310
    """
    reported = _reported_reasoning_tokens(response)
    if reported:
        return reported
    total = 0
    for choice in _get(response, "choices") or []:
        message = _get(choice, "message")
        if message is None:
            continue
        total += sum(estimated_tokens(_text_of(_get(message, f))) for f in REASONING_FIELDS)
        content = _get(message, "content")
        if isinstance(content, str):
            total += estimated_tokens(split_reasoning(content, cot_requested)[1])
    return total


def _protect_message(message: Any, protection: Protection, cot_requested: bool) -> str:
    """Protect one message in place; the reasoning text it took out."""
    taken = ""
    for name in REASONING_FIELDS:
        value = _get(message, name)
        if value:
            taken += _text_of(value)
            if protection.mode == "summary" and name == "reasoning_content":
                _set(message, name, protection.summary)
            else:
                _remove(message, name)
    extra = _get(message, "provider_specific_fields")
    if isinstance(extra, MutableMapping):
        for name in REASONING_FIELDS:
            if extra.get(name):
                taken += _text_of(extra.pop(name))
    content = _get(message, "content")
    if isinstance(content, str):
        served, reasoning = split_reasoning(content, cot_requested)
        if reasoning:
            taken += reasoning
            if protection.mode == "summary":
                served = f"<think>{protection.summary}</think>{served}" if "<think>" in content.lower() else served
            _set(message, "content", served)
    return taken


def protect(response: Any, protection: Protection, cot_requested: bool = False) -> Withheld:
    """Protect a chat completion in place (a dict in the OpenAI shape, or an object with the same
    attributes, as LiteLLM's `ModelResponse`); what was withheld."""
    withheld = Withheld()
    taken = ""
    for choice in _get(response, "choices") or []:
        message = _get(choice, "message")
        if message is not None:
            taken += _protect_message(message, protection, cot_requested)
        if protection.drop_logprobs and _get(choice, "logprobs") is not None:
            _set(choice, "logprobs", None)
            withheld.logprobs = True
    withheld.reasoning_tokens = _reported_reasoning_tokens(response) or estimated_tokens(taken)
    return withheld


class StreamProtector:
    """`protect` for a streamed answer, one chunk (an OpenAI-shaped delta chunk) at a time.

    A `<think>` tag can be split across chunks: the tail of a chunk's content that could begin a
    tag is held back and put before the next chunk's content.

    >>> p = StreamProtector(Protection())
    >>> chunks = [{"choices": [{"delta": {"content": c}, "logprobs": None}]}
    ...           for c in ("<thi", "nk>two plus", " two</th", "ink>Four", ".")]
    >>> "".join(p.chunk(c)["choices"][0]["delta"]["content"] for c in chunks) + p.flush()
    'Four.'
    >>> p.withheld.reasoning_tokens  # "two plus two": 12 characters
    3
    """

    _OPEN, _CLOSE = "<think>", "</think>"

    def __init__(self, protection: Protection) -> None:
        self.protection = protection
        self.withheld = Withheld()
        self._inside = False
        self._held = ""  # content that may begin a tag
        self._taken = 0  # characters of reasoning withheld (when no count is reported)
        self._reported = 0

    def _filter(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        served = []
        while text:
            tag = self._CLOSE if self._inside else self._OPEN
            at = text.lower().find(tag)
            if at < 0:
                keep = next((n for n in range(len(tag) - 1, 0, -1) if text.lower().endswith(tag[:n])), 0)
                part, self._held = (text[: len(text) - keep], text[len(text) - keep :]) if keep else (text, "")
                if self._inside:
                    self._taken += len(part)
                else:
                    served.append(part)
                break
            if self._inside:
                self._taken += at
            else:
                served.append(text[:at])
            text = text[at + len(tag) :]
            self._inside = not self._inside
        return "".join(served)

    def chunk(self, chunk: Any) -> Any:
        """Protect one chunk in place and return it."""
        reported = _reported_reasoning_tokens(chunk)
        self._reported = max(self._reported, reported)
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta")
            if delta is not None:
                for name in REASONING_FIELDS:
                    value = _get(delta, name)
                    if value:
                        self._taken += len(_text_of(value))
                        _remove(delta, name)
                content = _get(delta, "content")
                if isinstance(content, str) and content:
                    content = self._filter(content)
                    _set(delta, "content", content)
                if _get(choice, "finish_reason") is not None:  # the last chunk: what was held back
                    held = self.flush()
                    if held:
                        _set(delta, "content", (content if isinstance(content, str) else "") + held)
            if self.protection.drop_logprobs and _get(choice, "logprobs") is not None:
                _set(choice, "logprobs", None)
                self.withheld.logprobs = True
        self.withheld.reasoning_tokens = self._reported or math.ceil(self._taken / CHARS_PER_TOKEN)
        return chunk

    def flush(self) -> str:
        """Content held back at the end of the stream (a partial tag that never completed)."""
        held, self._held = self._held, ""
        return "" if self._inside else held


class WithheldLog:
    """What protection withheld from recent calls, by call id, for the gateway's event logger.

    The logger and the post-call hook run in one proxy process but in no set order: the logger may
    see a response before it is protected (and count the reasoning itself) or after (and find it
    here). Bounded: the oldest calls are forgotten first.

    >>> log = WithheldLog(capacity=2)
    >>> for call in ("c1", "c2", "c3"):
    ...     log.record(call, Withheld(5, True))
    >>> log.get("c1") is None, log.get("c3")
    (True, Withheld(reasoning_tokens=5, logprobs=True))
    """

    def __init__(self, capacity: int = 65_536) -> None:
        self.capacity = capacity
        self._calls: OrderedDict[str, Withheld] = OrderedDict()
        self._lock = threading.Lock()  # the hook runs on the proxy's loop, sync loggers in its threads

    def record(self, call_id: str, withheld: Withheld) -> None:
        with self._lock:
            self._calls[call_id] = withheld
            while len(self._calls) > self.capacity:
                self._calls.popitem(last=False)

    def get(self, call_id: str) -> Withheld | None:
        with self._lock:
            return self._calls.get(call_id)


#: The one log the LiteLLM enforcer writes and the LiteLLM event callback reads.
recently_withheld = WithheldLog()
