"""The people directory: who a Slack user id is (name, e-mail, title, deactivated), and was.

Records keep Slack user ids; renderings show people. Names come from Slack's `users.info`, looked
up by the worker after a user id is first seen (never inside a request), and refreshed daily. The
first sighting and every change of a name, e-mail, title or deactivation is an event on the
person's stream (`person:<id>`), so an export shows a name as it was when the recorded act
happened (vigil_ir.people.directory).
"""

from vigil_ir.people.directory import Directory, label_unknown
from vigil_ir.people.ids import is_user_id, user_ids_in
from vigil_ir.people.models import Person
from vigil_ir.people.service import Profile, record_not_found, record_profile, resolve, sight

__all__ = ["Directory", "Person", "Profile", "is_user_id", "label_unknown", "record_not_found", "record_profile",
           "resolve", "sight", "user_ids_in"]
