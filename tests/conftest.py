import os
import sys
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "fixtures")
JOURNALS = os.path.join(FIXTURES, "journals")

if REPO not in sys.path:
    sys.path.insert(0, REPO)


def expected_annotation_kinds(run) -> Counter:
    """How many Grafana annotations of each kind a run gives, from its events alone: one per
    experiment, activity, interruption and mark, one region for the method, one point per
    steady-state hypothesis not met; hypotheses that held and other phases show nothing."""
    expected: Counter = Counter()
    for event in run.events:
        if event.kind != "phase":
            expected[event.kind] += 1
        elif event.phase == "method":
            expected["method"] += 1
        elif event.fields.get("steady_state_met") is False:
            expected["steady-state"] += 1
    return expected
