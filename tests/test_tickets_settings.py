"""Ticket settings: a tracker set up by halves, an unknown route selector or target, two trackers without
saying which one gets new tickets: `vigil worker` refuses to start and names the setting. The ticket
policy in force is recorded with the rest of the configuration."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.config import Settings
from vigil_ir.tickets.config import TicketSettingsError, build

GOOD_JIRA = {"VIGIL_JIRA_URL": "https://acme.atlassian.net", "VIGIL_JIRA_EMAIL": "v@example.com",
             "VIGIL_JIRA_API_TOKEN": "t"}


@pytest.mark.parametrize("values, named", [
    ({"VIGIL_JIRA_URL": "https://acme.atlassian.net"}, "VIGIL_JIRA_EMAIL and VIGIL_JIRA_API_TOKEN are not set"),
    ({**GOOD_JIRA, "VIGIL_JIRA_PROJECTS": "sev9=OPS"}, "VIGIL_JIRA_PROJECTS: `sev9` is not `default`"),
    ({**GOOD_JIRA, "VIGIL_JIRA_PROJECTS": "default=ops project"}, "VIGIL_JIRA_PROJECTS: `ops project` is not a Jira"),
    ({**GOOD_JIRA, "VIGIL_GITHUB_TOKEN": "g"}, "VIGIL_TICKET_TRACKER: jira and github are both set up"),
    ({"VIGIL_GITHUB_REPOS": "default=acme/ops"}, "VIGIL_GITHUB_REPOS is set but VIGIL_GITHUB_TOKEN is not"),
    ({**GOOD_JIRA, "VIGIL_TICKET_TRACKER": "linear"}, "VIGIL_TICKET_TRACKER=linear: VIGIL_LINEAR_API_KEY is not set"),
    ({**GOOD_JIRA, "VIGIL_TICKETS_ON_DONE": "delete"}, "VIGIL_TICKETS_ON_DONE=delete: choose close, comment or none"),
    ({**GOOD_JIRA, "VIGIL_TICKETS_ALWAYS": "sev1,urgent"}, "VIGIL_TICKETS_ALWAYS: urgent is not a severity"),
    ({**GOOD_JIRA, "VIGIL_TICKETS_DIVERGENCE_GRACE": "soon"}, "VIGIL_TICKETS_DIVERGENCE_GRACE: invalid duration"),
    ({"VIGIL_GITHUB_TOKEN": "g", "VIGIL_GITHUB_USERS": "octocat=dana"}, "VIGIL_GITHUB_USERS: `octocat=dana`"),
])
def test_a_bad_ticket_setting_is_named(values, named):
    with pytest.raises(TicketSettingsError) as raised:
        build(Settings(_env_file=None, **values))
    assert named in str(raised.value)


def test_the_worker_refuses_to_start_naming_the_setting(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}", "SLACK_BOT_TOKEN": "xoxb-test",
           "VIGIL_JIRA_URL": "https://acme.atlassian.net"}
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code != 0
    assert "Configuration error: Jira needs" in result.output and "Traceback" not in result.output


def test_the_ticket_policy_is_part_of_the_recorded_configuration():
    from vigil_ir.config_evidence import document

    whole = document(Settings(_env_file=None, **{**GOOD_JIRA, "VIGIL_JIRA_API_TOKEN": "jira-secret-token-123"},
                              VIGIL_JIRA_PROJECTS="default=OPS/Task,security=SEC", VIGIL_TICKETS_ALWAYS="sev1",
                              VIGIL_TICKETS_ON_DONE="comment"))
    recorded = whole["tickets"]
    assert recorded == {"trackers": ["jira"], "new_tickets_in": "jira",
                        "routes": {"jira": {"default": "OPS/Task", "security": "SEC"}}, "always_for": ["sev1"],
                        "on_action_closed": "comment", "divergence_grace": "1 day, 0:00:00",
                        "reconcile_interval": "0:15:00"}
    assert "jira-secret-token-123" not in str(whole)
