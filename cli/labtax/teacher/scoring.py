"""Scoring a given reply with the embedded model: how likely it is after each conversation (gate/relevance.py).

One forward pass per group of rows of one length, never padded: in bfloat16 a left-padded row scored up to
0.6 nats away from the same row alone (float32: 1e-4), so rows are batched only with rows they need no padding
beside. Only the continuation's logits are kept (a full [rows, length, 49k] logits tensor would be GBs).
"""

from __future__ import annotations

from labtax.teacher.base import Likelihood, TeacherError

ROWS_PER_PASS = 8  # rows of one length scored in one forward pass


END_OF_TURN = "<|im_end|>"  # SmolLM2's


def reply_turn(tokenizer, messages: list[dict], reply: str, end: str = END_OF_TURN) -> tuple[str, str]:
    """(the conversation rendered up to the assistant's turn, the reply's turn through its end-of-turn marker
    `end`), both as the model's own chat template writes them: what a reply's score is the likelihood of, here
    and over an endpoint (teacher/endpoint_scorer.py)."""
    try:
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": reply}], tokenize=False)
    except Exception as exc:
        raise TeacherError(f"cannot apply the chat template: {exc}") from None
    tail = full[len(head) :] if full.startswith(head) else reply
    cut = tail.find(end) if end else -1
    return head, tail[: cut + len(end)] if cut >= 0 else tail


def score(model, tokenizer, context: int, contexts: list[list[dict]], continuation: str) -> list[Likelihood | None]:
    """Summed log-probabilities of the continuation's tokens (and the end of turn) after each context, and
    the last one's alone (the end of turn's, where the chat template has one); None for a context that does not
    fit `context` tokens."""
    import torch

    tails, prompts = [], []
    for messages in contexts:
        head, tail = reply_turn(tokenizer, messages, continuation)
        tails.append(tail)
        prompts.append(tokenizer(head, add_special_tokens=False).input_ids)
    results: list[Likelihood | None] = [None] * len(contexts)
    groups: dict[str, list[int]] = {}
    for i, tail in enumerate(tails):
        groups.setdefault(tail, []).append(i)
    for tail, members in groups.items():
        target = tokenizer(tail, add_special_tokens=False).input_ids
        by_length: dict[int, list[int]] = {}
        for i in members:
            if len(prompts[i]) + len(target) <= context and target:
                by_length.setdefault(len(prompts[i]), []).append(i)
        batches = [
            same[k : k + ROWS_PER_PASS] for same in by_length.values() for k in range(0, len(same), ROWS_PER_PASS)
        ]
        for chunk in batches:
            ids = torch.tensor([prompts[i] + target for i in chunk], dtype=torch.long)
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=False, logits_to_keep=len(target) + 1)
                logprobs = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)
                wanted = torch.tensor(target, dtype=torch.long).expand(len(chunk), -1).unsqueeze(-1)
                tokens = logprobs.gather(-1, wanted).squeeze(-1)
            for i, total, end in zip(chunk, tokens.sum(-1).tolist(), tokens[:, -1].tolist(), strict=True):
                results[i] = Likelihood(round(total, 4), round(end, 4))
    return results
