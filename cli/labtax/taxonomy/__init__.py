"""The taxonomy: leaves (one qna.yaml each), how they are found and how they are read."""
