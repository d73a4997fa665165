"""Where the text sits in one model call's joint attention, and which attention calls are joint.

A joint sequence is [before | registers | text | after]: visual tokens before the text stream,
learned register tokens (AuraFlow), the text as the model sees it (its padding included),
visual tokens after (noisy image, reference images, ...). Image-first families have
`after == 0`, text-first families `before == 0`.

An attention call is joint when its keys are exactly that sequence. Its queries are either
the same tokens, or (KV cache: FluxKVCache appends cached reference keys) a prefix of the keys
that still holds the whole text stream. Shorter calls (refiners, image-only or text-only
attention) are not joint; anything else is an unexpected shape, left alone and reported.
Causal-prefix models hand only their generation rows to attention (GenerationRowsLayout,
TargetRowsLayout: the latter with the text in several spans).
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


@dataclass(frozen=True)
class TargetRowsLayout:
    """A block-causal sequence [text, with reference images between its parts | target image] (Qwen-Image 2.1).

    Its model attends segment by segment: text runs causally, a reference sees what comes before it,
    and the target image, last, sees everything. Only that last call is joint: its queries are the
    target rows and its keys the whole sequence, whether the prefix was just computed or read back
    from a prefix cache. None of its query rows is text: each gets gamma on every text span. The
    text and reference calls (shorter keys) are left alone, so nothing TACA does reaches a cached
    prefix. Same interface as TokenLayout (text, total, classify, describe).
    """
    text_spans: Tuple[Span, ...]  # positions of the text parts among the prefix, in order
    prefix: int                   # tokens before the target: text parts and reference images
    target: int                   # target image tokens, last

    @property
    def text(self) -> int:
        return sum(stop - start for start, stop in self.text_spans)

    @property
    def total(self) -> int:
        return self.prefix + self.target

    def classify(self, n_queries: int, n_keys: int):
        if n_keys < self.total:
            return NOT_JOINT, None
        if n_keys == self.total and n_queries == self.target:
            return JOINT, (self.text_spans, (0, 0))
        return UNEXPECTED, None

    def describe(self) -> str:
        refs = self.prefix - self.text
        parts = [("text", self.text), ("reference", refs), ("target image", self.target)]
        spans = f" (text in {len(self.text_spans)} spans)" if len(self.text_spans) > 1 else ""
        return " + ".join(f"{n} {kind}" for kind, n in parts if n) + f" = {self.total} tokens{spans}"
