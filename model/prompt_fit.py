"""Fitting a prompt to the text encoder's token budget, so truncation is visible instead of silent.

The text encoders keep at most `max_length` tokens (256 for the LLM, 16 for `tiny-random`) and drop
the rest without a word. `fit_prompt` cuts the prompt at a word boundary so it fits, and reports
that it did, so the CLI and the demo can tell the user which part of the prompt was read.

Training and serving both encode the fitted text: serving reads what the user is told, and the DiT
latent cache (training.dit.latent_cache) encodes each caption as serving would read it. Left to the
encoder, a long caption would differ between the two: the LLM cut mid-word without the template's
closing tokens, and the pooled encoder, which has its own longer budget, reading the whole caption.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.text import HFTextEncoder, TextEncoder


@dataclass(frozen=True)
class PromptFit:
    """`text` is what the model reads; `tokens` / `limit` are counts in the encoder's tokens."""

    text: str
    truncated: bool
    tokens: int
    limit: int
    original_tokens: int

    def notice(self) -> str:
        """A one-line message for users; empty when nothing was cut."""
        if not self.truncated:
            return ""
        return (
            f"The prompt was {self.original_tokens} tokens long; the text encoder reads {self.limit}, "
            f'so it was truncated to: "{self.text}"'
        )


def token_count(encoder: TextEncoder, prompt: str) -> int:
    """Tokens `prompt` takes in `encoder`'s budget (template tokens after the prompt included)."""
    if isinstance(encoder, HFTextEncoder):
        tokenizer = encoder.llm_tokenizer
        ids = tokenizer(encoder.config.template.format(prompt), add_special_tokens=True)["input_ids"]
        return max(len(ids) - encoder.crop_start, 1)
    # tiny-random: one start token plus one token per whitespace-separated word.
    return 1 + len(prompt.split())


def fit_prompt(encoder: TextEncoder, prompt: str) -> PromptFit:
    """The longest word prefix of `prompt` whose token count fits `encoder.max_length`."""
    limit = int(encoder.max_length)
    total = token_count(encoder, prompt)
    if total <= limit:
        return PromptFit(prompt, False, total, limit, total)
    words = prompt.split()
    low, high = 0, len(words)  # invariant: words[:low] fits; words[:high + 1] does not (or high = len)
    while low < high:
        mid = (low + high + 1) // 2
        if token_count(encoder, " ".join(words[:mid])) <= limit:
            low = mid
        else:
            high = mid - 1
    text = " ".join(words[:low])
    return PromptFit(text, True, token_count(encoder, text), limit, total)
