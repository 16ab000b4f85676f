import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "fixtures")
JOURNALS = os.path.join(FIXTURES, "journals")

if REPO not in sys.path:
    sys.path.insert(0, REPO)
