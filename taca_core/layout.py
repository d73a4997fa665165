"""Where the text sits in one model call's joint attention, and which attention calls are joint.

A joint sequence is [before | registers | text | after]: visual tokens before the text stream,
learned register tokens (AuraFlow), the text as the model sees it (its padding included),
visual tokens after (noisy image, reference images, ...). Image-first families have
`after == 0`, text-first families `before == 0`.

An attention call is joint when its keys are exactly that sequence. Its queries are either
the same tokens, or (KV cache: FluxKVCache appends cached reference keys) a prefix of the keys
that still holds the whole text stream. Shorter calls (refiners, image-only or text-only
attention) are not joint; anything else is an unexpected shape, left alone and reported.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from .attention import Span

JOINT = "joint"
NOT_JOINT = "not joint"
UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class TokenLayout:
    text: int
    after: int = 0       # visual tokens after the text stream
    before: int = 0      # visual tokens before the text stream
    registers: int = 0   # learned tokens between `before` and the text: rows untouched, keys not scaled

    @property
    def total(self) -> int:
        return self.before + self.registers + self.text + self.after

    @property
    def text_keys(self) -> Span:
        start = self.before + self.registers
        return start, start + self.text

    @property
    def text_stream(self) -> Span:
        """The query rows TACA leaves alone: registers and text."""
        return self.before, self.before + self.registers + self.text

    def classify(self, n_queries: int, n_keys: int) -> Tuple[str, Optional[Tuple[Span, Span]]]:
        """(JOINT, (text_keys, text_queries)) for a joint call, else (NOT_JOINT or UNEXPECTED, None)."""
        if n_keys < self.total:
            return NOT_JOINT, None
        if n_keys == self.total and self.text_stream[1] <= n_queries <= n_keys:
            return JOINT, (self.text_keys, self.text_stream)
        return UNEXPECTED, None

    def describe(self) -> str:
        parts = [("visual", self.before), ("register", self.registers), ("text", self.text), ("visual", self.after)]
        return " + ".join(f"{n} {kind}" for kind, n in parts if n) + f" = {self.total} tokens"


@dataclass(frozen=True)
class GenerationRowsLayout(TokenLayout):
    """A joint call whose queries are the LAST keys: the generation rows of a causal-prefix model.

    A causal-prefix model (HiDream-O1) runs its text prefix's own rows elsewhere (causal, text only) and hands only the
    generation rows to ComfyUI's attention, with every key (the prefix's from its KV cache from the
    second call on). None of those query rows is text, so each gets gamma on the text keys.
    """

    def classify(self, n_queries: int, n_keys: int):
        if n_keys < self.total:
            return NOT_JOINT, None
        if n_keys == self.total and n_queries == n_keys - self.text_stream[1]:
            return JOINT, (self.text_keys, (0, 0))
        return UNEXPECTED, None
