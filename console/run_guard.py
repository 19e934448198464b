"""A headless scenario run never acts on somebody else's database.

`watchfloor run --headless` plays a simulated estate and, with `--autonomy` and
`--approve all`, sets the policy, the ceiling and a stand-in approver, and approves what
its agents recommend. On a database people work in, that would replace their policy,
add users and approve their pending work in their names. So a run plays on a private
database (a temporary file when `--db` is left out), or on one that only headless runs
have used. A database with people on it is refused, unless its administrator says, with
`--i-own-this-database` and their password, that the run may use it; even then the run
acts only as its own identities (`headless-admin`, `on-call`), approves only what its
own agents recommended, leaves other people's pending work alone, and puts the policy
and ceiling back when it ends. Every step of that is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.policy import Policy
    from console.service import WatchfloorService

HEADLESS_ADMIN, HEADLESS_APPROVER = "headless-admin", "on-call"
HEADLESS_USERS = (HEADLESS_ADMIN, HEADLESS_APPROVER)


class DatabaseInUse(ValueError):
    """The database has people on it (or work in flight) and the run may not use it."""


def people(service: WatchfloorService) -> list[str]:
    """The users of a database who are not a headless run's own identities (or who have
    a password: nobody signs in as a stand-in)."""
    accounts = service.auth.accounts()
    return [a.name for a in accounts if a.name not in HEADLESS_USERS or a.has_password]


def refuse_unless_private(service: WatchfloorService, where: str) -> None:
    names = people(service)
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                        else "")
        raise DatabaseInUse(
            f"{where} has users ({shown}): a headless scenario run plays on a private "
            "database and never changes a team's policy, users or pending work. Leave "
            "out --db (a temporary database), or, as its administrator, give "
            "--i-own-this-database --as ADMIN with your password")


@dataclass
class Claim:
    """What a run on a database it was given changes, to put back at its end."""

    owner: str | None  # the administrator who gave the database to the run; None: private
    policy: Policy | None = None
    ceiling: int | None = None
    first_recommendation: int = 0  # the run approves only ids above this

    def begin(self, service: WatchfloorService) -> None:
        """Make the run's own identities and remember what the run may change."""
        if self.owner is None:
            refuse_unless_private(service, "this database")
            service.bootstrap_admin(HEADLESS_ADMIN)
            if service.role_of(HEADLESS_ADMIN) != "admin":  # only the stand-in approver
                raise DatabaseInUse(f"{HEADLESS_ADMIN} is not an administrator of this "
                                    "database: use a new one")
            return
        if service.role_of(self.owner) != "admin":
            raise DatabaseInUse(f"{self.owner} is not an administrator of this database: "
                                "only an administrator gives it to a headless run")
        busy = service.engine.executions(("intent", "running", "validating",
                                          "rolling_back"))
        queued = service.engine.recommendations(("queued",))
        if busy or queued:
            raise DatabaseInUse(
                f"this database has work in flight ({len(busy)} execution(s) running, "
                f"{len(queued)} approved and queued): a scenario run would run or "
                "validate it against a simulated estate. Settle it first")
        service.record(actor=f"user:{self.owner}", action="run.claim_database",
                       target="headless scenario run",
                       reason="--i-own-this-database: the administrator lets a headless "
                              "run use this database")
        if service.role_of(HEADLESS_ADMIN) is None:
            service.add_user(HEADLESS_ADMIN, "admin", as_user=self.owner)
        recent = service.engine.recommendations()
        self.first_recommendation = max((r.id for r in recent), default=0)
        self.policy, self.ceiling = service.policy(), service.status().autonomy_ceiling

    def end(self, service: WatchfloorService) -> None:
        """Put the policy and the ceiling back as the owner had them."""
        if self.owner is None:
            return
        if self.policy is not None:
            service.set_policy(self.policy, as_user=HEADLESS_ADMIN,
                               reason="headless run ended: the policy as it was")
        if self.ceiling is not None:
            service.set_autonomy_ceiling(self.ceiling, as_user=HEADLESS_ADMIN,
                                         reason="headless run ended: the ceiling as it was")
