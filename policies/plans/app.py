"""A Loom Auth policy in Python: reserved usernames cannot register, and access tokens say
which plan the account is on.

Settings (--policy-config):
    {"reserved_usernames": ["admin", "root"], "plans": {"ada@acme.com": "team"}, "default_plan": "free"}

Built with componentize-py against wit/policy (see the README beside this file).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.decisions import Decision_Allow, Decision_Deny


def settings(config: str) -> dict:
    try:
        parsed = json.loads(config)
    except ValueError as error:
        raise Err(f"the policy settings are not JSON: {error}")
    if not isinstance(parsed, dict):
        raise Err("the policy settings must be a JSON object")
    return parsed


class Decisions(exports.Decisions):
    def registration(self, config, request):
        reserved = {name.lower() for name in settings(config).get("reserved_usernames", [])}
        if request.username is not None and request.username.lower() in reserved:
            return Decision_Deny(f"the username {request.username} is reserved: choose another")
        return Decision_Allow()

    def login(self, config, request):
        return Decision_Allow()

    def access_claims(self, config, request):
        chosen = settings(config)
        plan = chosen.get("plans", {}).get(request.account.email, chosen.get("default_plan", "free"))
        return json.dumps({"plan": plan})
