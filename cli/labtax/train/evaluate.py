"""Measuring the student: answer loss on held-out seed answers, and short answers to read side by side.

Held-out loss is the mean negative log-likelihood of the reference answer's tokens given the question
(exactly the tokens training would put a loss on), pooled over a leaf's held-out examples; perplexity is
its exp. These seeds were never shown to the teacher, so a falling loss means the generated data taught
something the model was not handed. Everything here runs in eval mode under no_grad and is deterministic.
"""

from __future__ import annotations

import math

from labtax.train.encode import Encoded, collate, collate_left, pad_token_id, prompt_ids

EVAL_BATCH = 8


def answer_nll(model, batch):
    """Per-token NLL of the answer tokens only, and the batch row of each.

    The vocabulary projection (49,152 x 576) runs only on the positions that predict an answer token,
    not on the whole padded batch as `model(labels=...)` would: the same loss, less work and memory.
    LoRA layers are injected into the base model's modules in place, so calling its inner model uses them.
    """
    import torch.nn.functional as F

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    logits = causal.lm_head(hidden[:, :-1][mask]).float()
    return F.cross_entropy(logits, labels[mask], reduction="none"), mask.nonzero()[:, 0]


def token_losses(model, items: list[Encoded], pad_id: int) -> list[tuple[float, int]]:
    """(summed answer-token NLL, answer-token count) per item."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(items), EVAL_BATCH):
            batch = collate(items[start : start + EVAL_BATCH], pad_id)
            nll, rows = answer_nll(model, batch)
            rows_n = batch["input_ids"].shape[0]
            sums = torch.zeros(rows_n).index_add_(0, rows, nll)
            counts = torch.zeros(rows_n).index_add_(0, rows, torch.ones_like(nll))
            out += [(float(s), int(c)) for s, c in zip(sums, counts)]
    return out


def mean_loss(model, items: list[Encoded], pad_id: int) -> float | None:
    """Token-weighted mean answer loss over `items` (the training probe batch)."""
    pairs = token_losses(model, items, pad_id)
    tokens = sum(n for _, n in pairs)
    return sum(s for s, _ in pairs) / tokens if tokens else None


def leaf_losses(model, items: list[Encoded], pad_id: int) -> dict[str, dict]:
    """Per leaf: pooled answer loss, perplexity, examples and tokens."""
    pooled: dict[str, list] = {}
    for item, (nll, n) in zip(items, token_losses(model, items, pad_id)):
        acc = pooled.setdefault(item.leaf, [0.0, 0, 0])
        acc[0] += nll
        acc[1] += n
        acc[2] += 1
    result = {}
    for leaf, (nll, n, examples) in sorted(pooled.items()):
        loss = nll / n
        result[leaf] = {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "examples": examples, "tokens": n}
    return result


def generate_answers(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy answers (with a mild repetition penalty: greedy output of this model loops), one batch."""
    import torch

    if not conversations:
        return []
    pad_id = pad_token_id(tokenizer)
    batch = collate_left([prompt_ids(tokenizer, messages) for messages in conversations], pad_id)
    with torch.no_grad():
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=1.15,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    new = output[:, batch["input_ids"].shape[1] :]
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]


def pick_examples(heldout: list[dict], leaves_in_order: list[str], count: int) -> list[dict]:
    """Up to `count` held-out records from different leaves, in the order the phases train them."""
    chosen, seen = [], set()
    for leaf in leaves_in_order:
        for record in heldout:
            if record["leaf"] == leaf and leaf not in seen:
                chosen.append(record)
                seen.add(leaf)
                break
        if len(chosen) >= count:
            break
    return chosen


def question_of(record: dict) -> str:
    users = [m["content"] for m in record["messages"] if m["role"] == "user"]
    return users[-1] if users else ""
