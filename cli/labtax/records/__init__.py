"""What flows between the stages after generation, typed once: the output folder's layout (`layout.py`), the
JSON Lines reader every consumer uses (`jsonl.py`), the chat-message check (`messages.py`), and the record
types with their read/write functions (`types.py`: sample, rejected, held-out rows, the leaf and run
summaries; schema/records/ is their JSON Schema). generate, merge, mix, train and comment all go through it;
it imports no stage.
"""
