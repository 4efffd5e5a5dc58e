"""Text from the data, shown as text: never markdown, HTML or a link.

A site, condition, route, visit type, patient id, file name or quarantine
reason comes from a clinic's export, and an export can say anything: a site
named ``![t](http://attacker/x.png)`` would be an image (a tracking beacon)
in a caption, and ``<a href=...>`` a link in a chart.  So:

* :func:`text` escapes a value for Streamlit's markdown (``st.markdown``,
  ``st.caption``, ``st.info``/``warning``/``error``/``success``, titles,
  metric and expander labels): every markdown punctuation character is
  backslash-escaped, line breaks become spaces and an invisible word joiner
  stops GFM from turning a URL or address into a link, so it reads as written.
* :func:`plain_figure` is the one chokepoint for Plotly (``theme.styled``
  calls it on every chart): every string in the figure (labels, names, tick
  labels, hover text, titles, annotations) is HTML-escaped (``&`` and ``<``), because Plotly
  renders ``<a>``, ``<b>``, ``<br>`` and ``<span style>`` in any of them.
  Hover and text *templates* are code, not data, and are left alone (the
  values they insert are escaped).  Markup the code itself means (a line
  break in a label) is wrapped in :class:`Markup` and kept.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^@])")
# Streamlit's markdown (GFM) turns a URL, a www. name or an e-mail address in
# plain text into a link after escapes are resolved, so a backslash cannot stop
# it: an invisible WORD JOINER (U+2060) inside "://", after "www" and after "@"
# does, and the text still reads as written.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def text(value: Any) -> str:
    """``value`` as literal text inside Streamlit markdown: no markup, no
    link, no image, on one line."""
    flat = " ".join(str(value).split())  # no line starts: no headings, lists, tables
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, flat))


def texts(values, separator: str = ", ") -> str:
    """Several values from the data, each escaped, joined."""
    return separator.join(text(v) for v in values)


def table_frame(frame):
    """``frame`` for ``st.table``, which draws each cell as markdown: every
    cell escaped as text (:func:`text`), the column labels kept."""
    return frame.astype(str).map(text)


class Markup(str):
    """Plotly markup written by the code (``"all visits<br>(120)"``): kept
    as it is by :func:`plain_figure`.  Escape any data inside it first
    (:func:`plotly_text`)."""


def plotly_text(value: Any) -> str:
    """A value as literal text in Plotly (which decodes these entities).
    Without ``<`` no tag can open; ``&`` is escaped so that an entity in the
    data (``&lt;a href=...``) stays as written; a lone ``>`` is text."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;")


_UNSAFE = re.compile(r"[&<]")


def _plain(value):
    """``value`` (a string, or a nested list/tuple/array of them) with every
    string escaped; the same object when nothing needed escaping."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return plotly_text(value) if _UNSAFE.search(value) else value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "OUS":
            return value  # numbers and dates: nothing to escape
        changed = [_plain(v) for v in value.ravel().tolist()]
        if all(a is b for a, b in zip(changed, value.ravel().tolist())):
            return value
        return np.array(changed, dtype=object).reshape(value.shape)
    if isinstance(value, (list, tuple)):
        changed = [_plain(v) for v in value]
        if all(a is b for a, b in zip(changed, value)):
            return value
        return type(value)(changed) if isinstance(value, list) else tuple(changed)
    return value


def _is_template(key: str) -> bool:
    return key.endswith("template") or key.endswith("templatefallback")


def _walk(node, path: tuple, found: list) -> None:
    """Collect (path, escaped value) for every string under a figure
    object's JSON that needs escaping."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not _is_template(key):
                _walk(value, (*path, key), found)
        return
    if isinstance(node, (list, tuple)) and node and isinstance(node[0], dict):
        for number, item in enumerate(node):
            _walk(item, (*path, number), found)
        return
    plain = _plain(node)
    if plain is not node:
        found.append((path, plain))


def plain_figure(fig):
    """Escape, in place, every string of ``fig`` that Plotly would render as
    markup (see the module's docstring); returns ``fig``."""
    layout = {k: v for k, v in fig.layout.to_plotly_json().items() if k != "template"}
    for owner, json in [*((trace, trace.to_plotly_json()) for trace in fig.data),
                        (fig.layout, layout)]:
        changes: list = []
        _walk(json, (), changes)
        for path, value in changes:
            target = owner
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
    return fig
