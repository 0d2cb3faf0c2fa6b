"""The editorial actions, as one ``Desk``: post, correct (hold, release), kill, approve,
reject, purge; expiry and embargo release for the sweeper. Each action is its own module
(post.py, correct.py, kill.py, decide.py, purge.py, due.py), all written through
commit.py; reads of the record are in archive.py; the sign-off rules (who waits, who
may approve or change what) in signoff.py.
"""

from __future__ import annotations

from ticker.newsroom.correct import Correcting
from ticker.newsroom.decide import SigningOff
from ticker.newsroom.due import Due
from ticker.newsroom.kill import Killing
from ticker.newsroom.post import Posting
from ticker.newsroom.purge import Purging


class Desk(Posting, Correcting, Killing, SigningOff, Purging, Due):
    """Every write of the desk: each action from its module, one state and one commit
    (``commit.Writer``)."""
