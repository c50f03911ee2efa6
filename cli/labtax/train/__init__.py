"""Phased LoRA smoke training: does the generated data move a small model on held-out seed answers?

Modules, one job each: `data` (read and check generate's output, plan the phases), `encode` (chat template,
assistant-only labels, dynamic padding), `model` (base model + LoRA), `loop` (the training steps),
`evaluate` (held-out loss / perplexity, before/after answers), `verdict` (numbers -> verdict), `report`
(train_report.json / .md), `runner` (the whole run). torch, transformers and peft are imported only inside
functions, so importing this package costs nothing.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'labtax[train]' torch==2.13.0 (or `make demo`, which installs everything)"
