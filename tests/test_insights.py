"""The dashboard's Insights page: the program review's figures for a period and filters, each count
of incidents linking to the incident list that holds exactly those incidents."""

from __future__ import annotations

import html
import re

from tests.dashboard_seed import make_token
from tests.test_dashboard import Dash
from tests.test_program_review import seed


def listed(dash: Dash, link: str) -> list[str]:
    page = dash.client.get(html.unescape(link))
    assert page.status_code == 200
    return re.findall(r'<tr class="incident-row">\s*<td class="key"><a href="/incidents/(INC-\d+)"', page.text)


def test_insights_show_the_review_figures_and_link_each_count_to_its_incidents(db):
    seed(db)
    _, secret = make_token(db, name="Acme Audit LLP")
    dash = Dash(db)
    try:
        assert dash.sign_in(secret).status_code == 303
        page = dash.client.get("/insights?from=2025-01-01&to=2025-03-31")
        assert page.status_code == 200
        text = page.text
        assert text.count("<svg") == 2 and "<script" not in text
        assert 'aria-current="page">Insights' in text
        total = re.search(r'<a id="all-incidents" href="([^"]+)">6 incidents</a>', text)
        assert total and len(listed(dash, total.group(1))) == 6
        months = dict(re.findall(r'<td><a href="([^"]+)">(2025-\d\d)</a></td>', text))
        by_month = {month: link for link, month in months.items()}
        assert sorted(by_month) == ["2025-01", "2025-02", "2025-03"]
        assert sorted(listed(dash, by_month["2025-01"])) == ["INC-2", "INC-3"]  # declared 3 and 4 January
        resolve = re.search(r'<td><a href="([^"]+)">sev2</a></td><td>Resolve</td>((?:<td>[^<]*</td>){5})', text)
        assert resolve.group(2) == "<td>5</td><td>180</td><td>300</td><td>100</td><td>slower by 80 min</td>"
        assert len(listed(dash, resolve.group(1))) == 5
        sev1 = dash.client.get("/insights?from=2025-01-01&to=2025-03-31&severity=sev1")
        assert re.search(r'id="all-incidents" href="[^"]+">1 incident</a>', sev1.text)
        assert listed(dash, re.search(r'id="all-incidents" href="([^"]+)"', sev1.text).group(1)) == ["INC-7"]
        bad = dash.client.get("/insights?from=2025-03-31&to=2025-01-01")
        assert bad.status_code == 400 and "is after To" in bad.text
        assert dash.client.get("/insights?from=2025-13-01").status_code == 400
    finally:
        dash.client.close()
