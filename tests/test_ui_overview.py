"""The chat window's rendering of overview answers (no browser): one card per cited article in
answer order with its date, every quoted passage marked, disagreements shown, all escaped."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.types import Answer, Citation, Claim, Conflict

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import ui  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword")

TEXTS = {"a": "Intro. Missiles hit <b>Belgorod</b>, killing 22. Later 110 were hurt.",
         "b": "In March one person was injured in Belgorod."}


class _Articles:
    def article(self, doc_id):
        return SimpleNamespace(text=TEXTS[doc_id])


def _cite(n, doc, snippet, date):
    start = TEXTS[doc].index(snippet)
    return Citation(n=n, doc_id=doc, title=f"<i>{doc}</i>", date=date, source=f"/news/{doc}.txt", snippet=snippet,
                    start=start, end=start + len(snippet), score=1.0)


def test_overview_sources_one_card_per_article_in_answer_order_with_dates_and_conflicts():
    c1 = _cite(1, "a", "Missiles hit <b>Belgorod</b>, killing 22.", "2024-01-01")
    c2 = _cite(2, "a", "Later 110 were hurt.", "2024-01-01")
    c3 = _cite(3, "b", "In March one person was injured in Belgorod.", "2024-03-27")
    conflict = Conflict("killed", "Belgorod<script>",
                        (Claim("22", 1, "a", "2024-01-01"), Claim("dozens", 3, "b", None)))
    ans = Answer(text="2024-01-01: ... [1] ... [2]\n2024-03-27: ... [3]", citations=[c1, c2, c3], refused=False,
                 backend="extractive", question="What happened in Belgorod?", kind="overview", conflicts=[conflict])
    out = ui.sources_html(_Articles(), ans)
    assert out.count('class="rag-src"') == 2  # two articles, not three citations
    assert out.index('id="rag-src-1"') < out.index('id="rag-src-3"')
    assert "[1][2]" in out and "2024-01-01" in out and "2024-03-27" in out
    assert out.count("<mark>") == 3 and "<mark>Missiles hit &lt;b&gt;Belgorod&lt;/b&gt;, killing 22.</mark>" in out
    assert "Reports differ" in out and "number killed" in out and "dozens" in out
    assert "<script>" not in out and "<i>" not in out and "<b>" not in out
    assert "overview answer" in ui.backend_html("extractive", None, "overview")


def test_factoid_sources_are_rendered_as_before():
    c1 = _cite(1, "a", "Missiles hit <b>Belgorod</b>, killing 22.", "2024-01-01")
    ans = Answer(text="x [1]", citations=[c1], refused=False, backend="extractive")
    out = ui.sources_html(_Articles(), ans)
    assert out.count('class="rag-src"') == 1 and "rag-conflicts" not in out and "[1]" in out
