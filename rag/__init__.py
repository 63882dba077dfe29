"""Offline question answering over LLM interview documents.

The data path, one module per step::

    corpus/ -> corpus.py -> chunking.py -> embeddings.py -> index.py -> index/
    question -> rewrite.py -> retrieve.py -> (prompts.py -> llm.py -> citations.py) -> Answer

Nothing here loads a model or touches disk at import time.
"""

__version__ = "0.1.0"
