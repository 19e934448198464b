"""Window actions declared as data and turned into QActions in one place (STYLE.md 7)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget


CEILINGS = ("answers questions only", "fixed rules", "proposes; a person approves",
            "bounded fixes on their own", "picks and drafts playbooks",
            "a team of agents works the incident")
"""What each autonomy ceiling (0-5) lets the agents do, as the Autonomy menu says it."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    id: str
    title: str
    menu: str
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    checkable: bool = False
    scope: str = ""
    """A pane's dock id: the shortcut works only while that pane has the focus (a bare
    letter like A must not approve anything while the operator types elsewhere)."""


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_bundle", "Open audit &bundle\u2026", "&File", ("Ctrl+O",),
               "Review an exported audit bundle, read-only, in a window of its own"),
    ActionSpec("open_recording", "Open &recording\u2026", "&File", ("Ctrl+Shift+O",),
               "Show a recorded incident (a recording folder, a PetShop or Nezha case) "
               "read-only, investigated as the agents would"),
    ActionSpec("quit", "&Quit", "&File", ("Ctrl+Q",), "Close the console"),
    ActionSpec("toggle_theme", "Toggle &theme", "&View", ("Ctrl+T",),
               "Switch between the dark and the light theme"),
    ActionSpec("focus_ask", "&Ask a question", "&View", ("Ctrl+L",),
               "Bring the ask box to the front and type a question in plain language"),
    ActionSpec("reset_layout", "&Reset layout", "&View", (),
               "Put every pane back where it was when the console was new"),
    ActionSpec("wallboard", "&Wallboard", "&View", ("F11",),
               "Open incidents, their states and the autonomy level in large type, full "
               "screen and read-only, for the NOC video wall (Esc leaves it)"),
    ActionSpec("faster", "&Faster", "&Simulation", ("Ctrl+=", "Ctrl++"),
               "Double the simulated clock's speed"),
    ActionSpec("slower", "&Slower", "&Simulation", ("Ctrl+-",),
               "Halve the simulated clock's speed"),
    ActionSpec("approve", "&Approve the selected recommendation", "&Operations", ("A",),
               "Approve exactly the preview shown (A in the recommendation queue)",
               scope="recommendations"),
    ActionSpec("reject", "&Reject the selected recommendation\u2026", "&Operations", ("R",),
               "Reject with a reason (R in the recommendation queue)",
               scope="recommendations"),
    ActionSpec("rollback", "Roll &back the selected action\u2026", "&Operations", (),
               "Undo the action selected in the history (asks first)"),
    ActionSpec("kill_switch", "&Kill switch", "&Autonomy", ("Ctrl+Shift+K",),
               "Drop every agent to autonomy level 0 at once (or lift that)", checkable=True),
    *(ActionSpec(f"ceiling_{level}", f"Ceiling &{level}: {what}", "&Autonomy", (),
                 f"Let no agent act above level {level}, whatever policy grants (admin; "
                 "audited). The ticked level is the ceiling in force", checkable=True)
      for level, what in enumerate(CEILINGS)),
    ActionSpec("settings", "&Settings\u2026", "&Tools", ("Ctrl+,",),
               "Sources, language model, policy and users (changes need the admin role)"),
    ActionSpec("assess", "&Maturity assessment\u2026", "&Tools", (),
               "Place this team on the maturity model, from answers and recorded evidence"),
)

MENU_ORDER = ("&File", "&View", "&Simulation", "&Operations", "&Autonomy", "&Tools")


def build_actions(parent: QWidget, specs: Sequence[ActionSpec],
                  handlers: Mapping[str, Callable[[], object]]) -> dict[str, QAction]:
    """One QAction per spec, named `action_<id>`, triggering its handler.

    Every spec needs a handler and every handler a spec, so the two cannot drift apart.
    """
    missing = {s.id for s in specs} ^ set(handlers)
    if missing:
        raise ValueError(f"actions and handlers differ: {sorted(missing)}")
    actions: dict[str, QAction] = {}
    for spec in specs:
        action = QAction(spec.title, parent)
        action.setObjectName(f"action_{spec.id}")
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        action.setCheckable(spec.checkable)
        if spec.tip:
            action.setStatusTip(spec.tip)
            action.setToolTip(spec.tip)
        handler = handlers[spec.id]
        action.triggered.connect(lambda _checked=False, h=handler: h())
        actions[spec.id] = action
    return actions


def fill_menus(menubar: QMenuBar, specs: Sequence[ActionSpec],
               actions: Mapping[str, QAction]) -> dict[str, QMenu]:
    """Menus in MENU_ORDER, each with its actions in declaration order."""
    menus: dict[str, QMenu] = {}
    for title in MENU_ORDER:
        menu = menubar.addMenu(title)
        menus[title] = menu
        for spec in specs:
            if spec.menu == title:
                menu.addAction(actions[spec.id])
    return menus
