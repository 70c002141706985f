"""The reports page in a real browser on a demo with KPI history (``demo-data --kpi-days``): the figures of the
days before, and an agents chart whose twenty names stay readable (slanted, inside the chart) in both languages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("reports"), demo_args=["--kpi-days", "3"]).start()
    yield live
    live.stop()


# Each axis label's box, the chart's box, and whether the label is drawn slanted.
_LABELS = """() => {
  const svg = document.querySelector('svg.chart');
  const box = svg.getBoundingClientRect();
  return {svg: [box.left, box.top, box.right, box.bottom],
          labels: [...svg.querySelectorAll('text.axis')].map(t => {
            const r = t.getBoundingClientRect();
            return {text: t.textContent, slanted: t.hasAttribute('transform'), box: [r.left, r.top, r.right, r.bottom]};
          })};
}"""


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_agents_of_a_demo_day_with_readable_names(server: LiveServer, browser: Any, locale: str) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "supervisor1", server.demo_password,
                                           "/reports?view=agents&from=2026-11-22&to=2026-11-22&interval=day",
                                           locale=locale, viewport={"width": 1366, "height": 900})
    try:
        rows = page.locator("table tbody tr")
        assert rows.count() == 30  # every demo agent worked a shift that day
        handled = [int(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(rows.count())]
        assert sum(handled) > 100
        signed_in = {rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())}
        assert signed_in == {"32400.0"}  # a nine-hour shift, to the tenth of a second
        drawn = page.evaluate(_LABELS)
        left, top, right, bottom = drawn["svg"]
        labels = drawn["labels"]
        assert len(labels) == 20 and all(label["slanted"] for label in labels)  # the chart's top twenty
        for label in labels:  # whole inside the chart: nothing cut off at its edges
            x0, y0, x1, y1 = label["box"]
            assert left <= x0 and x1 <= right + 1 and top <= y0 and y1 <= bottom + 1, label
        screenshot(page, f"reports-agents-{locale}")
        page.goto(f"{server.url}/reports?view=queues&from=2026-11-20&to=2026-11-22&interval=day")
        days = [label for label in page.evaluate(_LABELS)["labels"] if "%" not in label["text"]]  # not the y axis
        assert [label["text"] for label in days] == ["11-20", "11-21", "11-22"]
        assert not any(label["slanted"] for label in days)  # three dates fit level
        assert page.locator("table tbody tr").count() > 20
        screenshot(page, f"reports-queues-{locale}")
        assert errors == []
    finally:
        context.close()
