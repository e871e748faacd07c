"""textkit: a small procctl task plugin (used by samples/plugin.toml).

A plugin is a Python module with plain functions; a step calls one by
"module:function", and the step's `with` table arrives as keyword arguments:

    [[steps]]
    id = "slug"
    task = "textkit:slugify"
    with = { text = "{{ title }}" }

procctl finds this file because it sits beside the definition. The contract (sync
or async, the `context` parameter, what to return and how to fail) is in
docs/plugins.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procctl.agent.tasks import TaskContext


def slugify(text: str, separator: str = "-", max_length: int = 60) -> str:
    """'Crème brûlée, 2 ways!' -> 'creme-brulee-2-ways'.

    A sync function: the agent runs it in a worker thread, so it may take its time
    without holding up other instances. Raising fails the step."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", plain.lower())
    if not words:
        raise ValueError(f"no letters or digits to make a slug of in {text!r}")
    return separator.join(words)[:max_length].rstrip(separator)


async def word_count(text: str, context: TaskContext, top: int = 3) -> dict[str, Any]:
    """How many words and lines `text` has, and its `top` most common words.

    An async function: it runs on the agent's event loop, so it must not block (no
    time.sleep, no blocking I/O: await, or use asyncio.to_thread). It asks for the
    step's `context` by having a parameter of that name, and writes to the
    instance's history through it. The value it returns must be JSON-able."""
    words = re.findall(r"[\w']+", text.lower())
    common = Counter(words).most_common(top)
    await context.log("info", f"{len(words)} words (attempt {context.attempt})")
    return {"words": len(words), "lines": len(text.splitlines()),
            "top": [[word, count] for word, count in common]}
