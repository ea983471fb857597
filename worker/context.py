"""The context policy for script lines.

CSM sees at most `max_seq_len` (2048) rows: the context segments (each its text rows, its audio
frames and an end frame), the new line's text rows, and the frames it may generate. A line's
context is, in order: the voice prompt of every speaker of the script that names a voice (in
order of first appearance), then the preceding lines of the script with their generated audio.
When that is too long, the oldest preceding lines go first; then voice prompts, those of other
speakers before the current speaker's own. A line whose own text and length limit do not fit
even with no context fails with the engine's reason.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

S = TypeVar("S")


def fit_context(
    voices: Sequence[tuple[int, S]],
    history: Sequence[S],
    *,
    speaker: int,
    budget: int,
    rows: Callable[[S], int],
) -> list[S]:
    """voices: (speaker, segment) prompts; history: preceding lines, oldest first -> the segments
    to use, in order, whose rows add up to at most `budget`."""
    kept_history = list(history)
    # Other speakers' prompts are dropped before the current speaker's.
    kept_voices = sorted(voices, key=lambda pair: pair[0] == speaker)
    total = sum(rows(s) for _, s in kept_voices) + sum(rows(s) for s in kept_history)
    while total > budget and kept_history:
        total -= rows(kept_history.pop(0))
    while total > budget and kept_voices:
        total -= rows(kept_voices.pop(0)[1])
    by_appearance = [s for sp, s in voices if any(s is kept for _, kept in kept_voices)]
    return by_appearance + kept_history
