"""Teachers: the LLMs that write and judge synthetic data. Pipelines never know which one serves."""
