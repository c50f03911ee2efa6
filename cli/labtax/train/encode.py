"""Chat samples -> token ids with loss only on the assistant's tokens, and dynamically padded batches.

The conversation is rendered with the tokenizer's own chat template (the format the model was tuned on).
Which characters belong to an assistant turn is found by rendering the conversation up to that turn with
and without it; the tokens whose characters fall inside get labels, everything else (system, user, the
template's role markers, padding) gets -100 so the loss never rewards echoing the prompt. The turn's
closing end-of-turn marker is inside the span, so the model also learns where to stop.

Batches are padded to their own longest sequence, never to a fixed length: on this model, a LoRA step
at padded length 256 costs about five times one at the typical length 64.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    leaf: str

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    full = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True))
        end = len(render(tokenizer, messages[: i + 1]))
        if not (full.startswith(render(tokenizer, messages[: i + 1])) and start <= end):
            raise ValueError(
                "the chat template does not render conversations prefix by prefix; cannot locate assistant turns"
            )
        spans.append((start, end))
    return full, spans


def encode(tokenizer, record: dict, max_length: int) -> Encoded | None:
    """One sample, cut at `max_length` tokens from the right; None if no answer token is left."""
    full, spans = assistant_spans(tokenizer, record["messages"])
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = []
    for token, (start, end) in zip(ids, enc["offset_mapping"]):
        inside = end > start and any(s <= start and end <= e for s, e in spans)
        labels.append(token if inside else IGNORE)
    ids, labels = ids[:max_length], labels[:max_length]
    encoded = Encoded(ids, labels, record["leaf"])
    return encoded if encoded.answer_tokens else None


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The conversation up to (not including) its last assistant turn, ready for generation."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    text = render(tokenizer, messages[:last], add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_token_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return candidate
    return 0


def collate(items: list[Encoded], pad_id: int):
    """Right-padded tensors for training and loss evaluation, padded to this batch's longest item."""
    import torch

    width = max(len(item.input_ids) for item in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item.input_ids)
        input_ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def collate_left(prompts: list[list[int]], pad_id: int):
    """Left-padded prompts for batched generation (new tokens must follow every prompt directly)."""
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(prompt)
        attention[row, width - len(prompt) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention}


def batches(items: list[Encoded], batch_size: int, rng):
    """Endless batches, epoch after epoch in a fresh seeded order.

    Within windows of 8 batches, items are grouped by length before batching (less padding, faster
    steps); the batches themselves are then shuffled so lengths do not trend through an epoch.
    """
    while True:
        order = items[:]
        rng.shuffle(order)
        window = batch_size * 8
        epoch = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda item: len(item.input_ids))
            epoch += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(epoch)
        yield from epoch
