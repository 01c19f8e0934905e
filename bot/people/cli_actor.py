"""Who ran a CLI command that records something, bound to a person in the directory.

`--by` takes a Slack user id or the e-mail Slack has for them; the record then names that person
("Jane Roe (U02JANE)") like any action taken in Slack. A name typed by hand cannot be tied to
anyone, so it is refused. Without `--by` the record says which login on the host ran it
(`cli:<login name>`), which an auditor sees as a host account, not a person.
"""

from __future__ import annotations

import getpass
from typing import Callable

import click
from sqlmodel import Session

from vigil_ir.people.service import not_a_person, resolve

ACTOR_MAX = 64


def host_login() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = "unknown"
    return f"cli:{user}"[:ACTOR_MAX]


def by_option(doing: str, *aliases: str) -> Callable:
    """The `--by` option of a command that records `doing` (e.g. "exporting")."""
    return click.option("--by", *aliases, "by", default=None, metavar="USER",
                        help=f"Who is {doing}, for the record: their Slack user id (U…) or e-mail, as known to "
                             "Vigil's people directory (default: cli:<login name>, the host account).")


def actor_for(session: Session, given: str | None) -> tuple[str, str]:
    """(the actor to record, how to name it): the person `given` names (their Slack user id), else
    the host login. Raises click.BadParameter naming the problem, before anything is written."""
    if given is None:
        login = host_login()
        return login, login
    person = resolve(session, given)
    if person is None:
        raise click.BadParameter(not_a_person(given.strip()), param_hint="--by")
    if person.deactivated:
        raise click.BadParameter(f"{person.display} ({person.user_id}) is deactivated in Slack", param_hint="--by")
    return person.user_id, f"{person.display} ({person.user_id})"
