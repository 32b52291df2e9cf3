"""Long traces in windows that fit the teacher's context.

A policy's `context.max_tokens` is the teacher's context window: for every call, the prompt's tokens (counted
with the run's tokenizer, `context.margin` kept free for the chat template and tokenizer differences) plus the
call's `max_tokens` stay under it. The segmenter, classifier and pruner each cut their list (units or steps)
into consecutive windows whose prompt and expected reply fit, and send one call per window; each window's
prompt keeps what it needs from outside it (the question, the original answer, the neighbouring steps).

Counting tokens costs CPU, so nothing is counted while a prompt's UTF-8 size alone proves it fits (a token
never covers less than one byte): short traces are never tokenized here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PER_MESSAGE_TOKENS = 8  # what a chat template adds around each message, at most, in the templates we know


@dataclass(frozen=True)
class Budget:
    limit: int | None  # None: no context limit (windows are then bounded by item counts and reply caps alone)
    margin: int
    counter: object  # drp.tokens.TokenCounter

    @classmethod
    def of(cls, ctx) -> Budget:
        settings = ctx.policy.context
        return cls(settings.max_tokens, settings.margin, ctx.counter)

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.counter.count(message["content"]) + PER_MESSAGE_TOKENS for message in messages)

    def reply_room(self, messages: list[dict], cap: int) -> int:
        """The largest max_tokens, at most `cap`, that keeps a call with these messages inside the context."""
        if self.limit is None:
            return cap
        free = self.limit - self.margin
        if free - _byte_bound(messages) >= cap:
            return cap
        return max(0, min(cap, free - self.prompt_tokens(messages)))


@dataclass
class Window:
    first: int  # 1-based, inclusive
    last: int
    reply_tokens: int  # the reply length it was planned for: its call leaves room for that
    messages: list[dict] | None = field(default=None, repr=False)  # its prompt, when planning rendered it


def _byte_bound(messages: list[dict]) -> int:
    return sum(len(message["content"].encode()) + PER_MESSAGE_TOKENS for message in messages)


def plan(
    count: int,
    *,
    render: Callable[[int, int], list[dict]],
    reply_tokens: Callable[[int, int, Callable], int],
    cap: int,
    budget: Budget,
    item_text: Callable[[int], str],
    max_items: int | None = None,
    reserve: int = 0,
) -> list[Window]:
    """Consecutive windows over items 1..count.

    A window fits when it has at most `max_items` items, its expected reply (`reply_tokens(first, last, size)`,
    where `size(i)` is item i's token count or a bound on it) is within the agent's `cap`, and its rendered prompt,
    grown by `reserve` tokens (a retry's feedback), leaves room for that reply within the budget. Windows are grown
    greedily from token counts of the items, then checked against the real rendered prompt (and shrunk if a count
    was off). A single item that does not fit on its own still gets its window: its call then reports that.
    """
    if count <= 0:
        return []
    max_items = max_items or count
    if max_items >= count:
        by_bytes = _bytes_of(item_text)
        messages = render(1, count)
        wanted = reply_tokens(1, count, by_bytes)
        if _fits(messages, wanted, cap, budget, reserve, exact=False):
            return [Window(1, count, wanted, messages)]  # the common case: proven by byte sizes, nothing counted
    sizes: dict[int, int] = {}

    def size(index: int) -> int:
        if index not in sizes:
            sizes[index] = budget.counter.count(item_text(index)) + 4  # the item's number and line break
        return sizes[index]

    windows, first = [], 1
    while first <= count:
        last = _grow(first, count, max_items, render, reply_tokens, cap, budget, size, reserve)
        while True:
            messages, wanted = render(first, last), reply_tokens(first, last, size)
            if last == first or _fits(messages, wanted, cap, budget, reserve, exact=True):
                break
            last -= 1
        windows.append(Window(first, last, wanted, messages))
        first = last + 1
    return windows


def _grow(first, count, max_items, render, reply_tokens, cap, budget, size, reserve) -> int:
    """The last item of the largest window from `first` that the item counts say will fit."""
    if budget.limit is None:
        free = None
    else:
        base = budget.prompt_tokens(render(first, first)) - size(first)  # instructions, question, neighbours
        free = budget.limit - budget.margin - base - reserve
    last, used = first, size(first)
    while last < count and last - first + 1 < max_items:
        candidate = last + 1
        if reply_tokens(first, candidate, size) > cap:
            break
        if free is not None and used + size(candidate) + reply_tokens(first, candidate, size) > free:
            break
        last, used = candidate, used + size(candidate)
    return last


def _fits(messages: list[dict], wanted: int, cap: int, budget: Budget, reserve: int, exact: bool) -> bool:
    if wanted > cap:
        return False
    if budget.limit is None:
        return True
    free = budget.limit - budget.margin - reserve - wanted  # what the prompt may take
    if _byte_bound(messages) <= free:
        return True
    return exact and budget.prompt_tokens(messages) <= free


def _bytes_of(item_text: Callable[[int], str]) -> Callable[[int], int]:
    return lambda index: len(item_text(index).encode()) + 4


def neighbours(first: int, last: int, count: int, items: list, around: int = 1) -> tuple[list, list]:
    """The (number, item) pairs just before and just after a window, shown to its call as context only."""
    before = [(n, items[n - 1]) for n in range(max(1, first - around), first)]
    after = [(n, items[n - 1]) for n in range(last + 1, min(count, last + around) + 1)]
    return before, after
